"""Where everything lives under the root (the seed's layout). Pure path arithmetic, no I/O.

    overlay-images/<image-id>/images.json, =<base64(digest)>   image records and big-data
    overlay-layers/<chain-id>.json                           layer records
    overlay/<chain-id>/{diff,link,lower}, overlay/l/<short>   extracted layers and short links
    overlay/<container-id>/{diff,work,merged}                 container read-write layers
    overlay-containers/<container-id>/                        container.json, config.json (bundle)...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.digest import digest_hex


@dataclass(frozen=True)
class Layout:
    """The root is kept in the spelling pathlib gives it ("/a//b/./" -> "/a/b"): one root
    spelled two ways must name the same files, and the same socket dir (a hash of the root,
    see engine.containers.sockets.socket_dir)."""
    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(os.fspath(root)))

    # images and layers
    @property
    def images_dir(self) -> Path:
        return self.root / "overlay-images"

    def image_dir(self, image_id: str) -> Path:
        return self.images_dir / digest_hex(image_id)

    @property
    def layers_dir(self) -> Path:
        return self.root / "overlay-layers"

    def layer_record(self, chain_id: str) -> Path:
        return self.layers_dir / f"{digest_hex(chain_id)}.json"

    @property
    def overlay_dir(self) -> Path:
        return self.root / "overlay"

    def layer_dir(self, chain_id: str) -> Path:
        return self.overlay_dir / digest_hex(chain_id)

    @property
    def short_links_dir(self) -> Path:
        return self.overlay_dir / "l"

    # containers
    @property
    def containers_dir(self) -> Path:
        return self.root / "overlay-containers"

    def container_dir(self, container_id: str) -> Path:
        return self.containers_dir / container_id

    def rw_layer_dir(self, container_id: str) -> Path:
        return self.overlay_dir / container_id

    # engine-wide state
    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    @property
    def tmp_dir(self) -> Path:
        """Staging area on the same filesystem, so finished work is published by rename."""
        return self.root / "tmp"

    @property
    def network_dir(self) -> Path:
        return self.root / "network"

    @property
    def runc_root(self) -> Path:
        """runc's --root: our containers' runc state, apart from anyone else's."""
        return self.root / "runc"

    @property
    def auth_file(self) -> Path:
        return self.root / "auth.json"
