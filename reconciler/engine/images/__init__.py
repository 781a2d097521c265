"""Images: pull (pull, ensure_image), the local catalog (list, inspect, layer chains), rmi
(removal) and the storage check. Images read container records (containers.store: which
image a container uses) and never the container lifecycle."""

from reconciler.engine.images.catalog import image_size, inspect_image, layer_chain, list_images
from reconciler.engine.images.check import check_storage
from reconciler.engine.images.pull import PullProgress, ensure_image, host_platform, pull
from reconciler.engine.images.removal import prune_layers, remove_image, remove_images

__all__ = ["PullProgress", "check_storage", "ensure_image", "host_platform", "image_size",
           "inspect_image", "layer_chain", "list_images", "prune_layers", "pull", "remove_image",
           "remove_images"]
