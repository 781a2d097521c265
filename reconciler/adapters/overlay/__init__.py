"""A container's storage: its read-write overlay layer, the rootfs mount, and the disk quota.

    mounts.py    the mount table, mount(2)/umount2(2), util-linux commands
    quota.py     project quotas, and the loop-backed ext4 image where there are none
    rwlayer.py   the read-write layer: create, mount the rootfs over the image's layers, remove
    tree.py      removing a directory tree of any depth without following symlinks

The quota is a project quota where the backing filesystem enforces them (xfs or ext4 mounted
with prjquota), else a loop-backed ext4 image. The overlay mount names the lower layers by their
overlay/l/<short> links and runs with overlay/ as working directory, so the mount data stays
well under the kernel's one-page limit even for images with a hundred layers.

Every function can be re-run after a crash at any point to finish the job (create, mount) or
undo it (unmount, remove).
"""

from reconciler.adapters.overlay.mounts import is_mounted, mounts, mounts_under
from reconciler.adapters.overlay.quota import (
    MIN_LOOP_SIZE, ext4_usable_bytes, loop_devices_for, quota_method,
)
from reconciler.adapters.overlay.rwlayer import (
    PAGE_SIZE, create_rw_layer, merged_dir, mount_rootfs, overlay_mount_data, remove_rw_layer,
    unmount_rootfs, upper_dir,
)
from reconciler.adapters.overlay.tree import remove_tree

__all__ = [
    "MIN_LOOP_SIZE", "PAGE_SIZE", "create_rw_layer", "ext4_usable_bytes", "is_mounted",
    "loop_devices_for", "merged_dir", "mount_rootfs", "mounts", "mounts_under",
    "overlay_mount_data", "quota_method", "remove_rw_layer", "remove_tree", "unmount_rootfs",
    "upper_dir",
]
