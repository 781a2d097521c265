"""A container's read-write layer and the rootfs mounted over its image's layers.

    overlay/<cid>/diff, work, merged          without a size limit
    overlay/<cid>/disk.img                    with a size on the loop path: a sparse ext4 image,
    overlay/<cid>/upper-fs/{diff,work}        mounted here (overlayfs needs upper and work on one fs);
    overlay/<cid>/diff -> upper-fs/diff       kept so overlay/<cid>/diff always names the upper dir
    overlay/<cid>/quota.json                  with a size on the project-quota path: the project id
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.adapters.overlay import quota
from reconciler.adapters.overlay.mounts import is_mounted, mount_overlay, mounts_under, run, umount
from reconciler.adapters.overlay.tree import remove_tree
from reconciler.core.errors import QuotaUnsupported, StorageError

if TYPE_CHECKING:
    from reconciler.core.layout import Layout

log = logging.getLogger(__name__)

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_VOLATILE_BOOT = "volatile-boot"     # the boot (its random id) of the last volatile mount


# ----- paths -----------------------------------------------------------------------------------

def _dir(layout: Layout, cid: str) -> Path:
    return layout.rw_layer_dir(cid)


def merged_dir(layout: Layout, cid: str) -> Path:
    return _dir(layout, cid) / "merged"


def _disk_image(layout: Layout, cid: str) -> Path:
    return _dir(layout, cid) / "disk.img"


def _upper_fs(layout: Layout, cid: str) -> Path:
    return _dir(layout, cid) / "upper-fs"


def _uses_loop(layout: Layout, cid: str) -> bool:
    return _disk_image(layout, cid).exists()


def upper_dir(layout: Layout, cid: str) -> Path:
    """The container's writable layer (what `docker diff` would read)."""
    if _uses_loop(layout, cid):
        return _upper_fs(layout, cid) / "diff"
    return _dir(layout, cid) / "diff"


def _work_dir(layout: Layout, cid: str) -> Path:
    if _uses_loop(layout, cid):
        return _upper_fs(layout, cid) / "work"
    return _dir(layout, cid) / "work"


# ----- the loop-backed upper filesystem ----------------------------------------------------------

def _mount_upper_fs(layout: Layout, cid: str) -> None:
    fs = _upper_fs(layout, cid)
    fs.mkdir(exist_ok=True)
    if not is_mounted(fs):
        # mount(8) attaches the loop device with autoclear: it detaches itself at unmount.
        try:
            run(["mount", "-t", "ext4", "-o", "loop", _disk_image(layout, cid), fs],
                f"mounting the quota filesystem of container {cid}")
        except StorageError as e:
            raise QuotaUnsupported(f"{e.message} (the disk quota needs a loop device on this host)",
                                   hint="check /dev/loop-control and the loop module") from None
    for sub in ("diff", "work"):
        (fs / sub).mkdir(0o755, exist_ok=True)


def _unmount_upper_fs(layout: Layout, cid: str) -> None:
    umount(_upper_fs(layout, cid))
    quota.detach_loops(_disk_image(layout, cid))


# ----- create ----------------------------------------------------------------------------------

def create_rw_layer(layout: Layout, container_id: str, size_bytes: int | None = None) -> Path:
    """Make overlay/<cid>/ with its upper, work and merged dirs; returns the layer's directory.

    With size_bytes, the layer is limited to that many bytes: a project quota where the backing
    filesystem enforces them, else a loop-backed ext4 image (left mounted, ready for the rootfs).
    Raises QuotaUnsupported where no mechanism can give that size.
    """
    d = _dir(layout, container_id)
    if size_bytes is not None and size_bytes <= 0:
        raise QuotaUnsupported(f"storage size {size_bytes} must be positive")
    method = None
    if size_bytes is not None:
        overlay_dir = layout.overlay_dir
        method = quota.quota_method(overlay_dir if overlay_dir.exists() else layout.root)
    if size_bytes is not None and method == "loop" and size_bytes < quota.MIN_LOOP_SIZE:
        raise QuotaUnsupported(
            f"storage size {size_bytes} bytes is too small: this host limits a container's "
            f"disk with a loop-backed ext4 filesystem, which needs at least 1MB",
            hint="use --storage-opt size=1m or more")
    fresh = not d.exists()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        _populate_rw_layer(layout, container_id, size_bytes, method)
    except BaseException:
        if fresh:   # a bad size or a failed mkfs leaves nothing behind
            remove_rw_layer(layout, container_id)
        raise
    return d


def _populate_rw_layer(layout: Layout, container_id: str, size_bytes: int | None, method: str) -> None:
    d = _dir(layout, container_id)
    if size_bytes is not None and not _uses_loop(layout, container_id) and method == "project":
        try:
            quota.set_project_quota(layout.overlay_dir, d, size_bytes)
        except OSError as e:
            log.debug("project quota refused for %s (%s); using a loop-backed image", container_id, e)
        else:
            size_bytes = None
    if size_bytes is not None or _uses_loop(layout, container_id):
        quota.make_disk_image(_disk_image(layout, container_id), size_bytes or 0)
        _mount_upper_fs(layout, container_id)
        diff = d / "diff"
        if not diff.is_symlink():
            if diff.is_dir():
                diff.rmdir()
            diff.symlink_to("upper-fs/diff")
    else:
        for sub in ("diff", "work"):
            (d / sub).mkdir(0o755, exist_ok=True)
    (d / "merged").mkdir(0o755, exist_ok=True)


# ----- mount -----------------------------------------------------------------------------------

def overlay_mount_data(layout: Layout, container_id: str, lowerdirs: list[str], *,
                       relative: bool = True) -> str:
    """The overlay mount options, with paths relative to overlay/ (the mount's working dir:
    what keeps many layers within the kernel's one page of options) or absolute."""
    base = layout.overlay_dir
    upper, work = upper_dir(layout, container_id), _work_dir(layout, container_id)
    if relative:
        return (f"lowerdir={':'.join(lowerdirs)},upperdir={upper.relative_to(base)},"
                f"workdir={work.relative_to(base)}")
    lowers = ":".join(str(base / d) for d in lowerdirs)
    return f"lowerdir={lowers},upperdir={upper},workdir={work}"


def mount_rootfs(layout: Layout, container_id: str, lowerdirs: list[str], *,
                 volatile: bool = False) -> Path:
    """Mount the container's rootfs at overlay/<cid>/merged (no-op if mounted); returns it.

    lowerdirs are LayerStore.lowerdirs(): "l/<short>" entries, topmost first. volatile (for
    --rm containers, as Podman does): overlay skips every sync to the upper layer, the
    unmount's included; what a container removed at its end writes need not survive a crash.
    """
    merged = merged_dir(layout, container_id)
    if is_mounted(merged):
        return merged
    d = _dir(layout, container_id)
    overlay_dir = layout.overlay_dir
    if not d.is_dir():
        raise StorageError(f"container {container_id} has no read-write layer at {d}")
    if _uses_loop(layout, container_id):
        _mount_upper_fs(layout, container_id)
    if not lowerdirs:   # an image without layers: overlay still needs one lower directory
        (d / "empty").mkdir(exist_ok=True)
        lowerdirs = [str((d / "empty").relative_to(overlay_dir))]
    for lower in lowerdirs:
        if not (overlay_dir / lower).is_dir():
            raise StorageError(f"layer {lower} of container {container_id} is missing "
                               f"({overlay_dir / lower})",
                               hint="the image's layers were removed; pull the image again")
    merged.mkdir(exist_ok=True)
    _clear_volatile_mark(layout, container_id)
    extra = ""
    if volatile:
        _write_small(d / _VOLATILE_BOOT, _boot_id())
        extra = ",volatile"
    absolute = overlay_mount_data(layout, container_id, lowerdirs, relative=False) + extra
    if len(absolute) < PAGE_SIZE:
        err = mount_overlay(merged, absolute)
        if err == 0:
            return merged
        if not (extra and err == errno.EINVAL):
            raise StorageError(f"mounting the rootfs of container {container_id} failed: "
                               f"{os.strerror(err)}")
        log.debug("overlay refused volatile (a kernel before 5.10): mounting %s without it", merged)
        return mount_rootfs(layout, container_id, lowerdirs)
    # only the paths relative to overlay/ (always the shorter) may fit: mount(8) run there
    data = overlay_mount_data(layout, container_id, lowerdirs) + extra
    if len(data) >= PAGE_SIZE:
        raise StorageError(f"overlay mount options for container {container_id} are {len(data)} "
                           f"bytes, over the kernel's {PAGE_SIZE}-byte limit "
                           f"({len(lowerdirs)} layers)")
    run(["mount", "-t", "overlay", "overlay", "-o", data, merged],
        f"mounting the rootfs of container {container_id}", cwd=overlay_dir)
    return merged


def _clear_volatile_mark(layout: Layout, container_id: str) -> None:
    """A volatile mount leaves work/work/incompat/volatile behind, and overlay refuses the next
    mount while it is there. Left in this boot, it only marks an earlier mount: what that one
    did not sync is still in the page cache. Left in another: the host went down while it was
    mounted, and what was written may be lost."""
    mark = _work_dir(layout, container_id) / "work" / "incompat" / "volatile"
    if not os.path.lexists(mark):
        return
    try:
        same_boot = (_dir(layout, container_id) / _VOLATILE_BOOT).read_text() == _boot_id()
    except FileNotFoundError:
        same_boot = False
    if not same_boot:
        raise StorageError(f"the read-write layer of container {container_id[:12]} was mounted "
                           f"without syncing (--rm) when the host went down: its files may be "
                           f"incomplete", hint=f"remove the container: docker-mini rm {container_id[:12]}")
    remove_tree(mark)


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _write_small(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ----- unmount and remove ------------------------------------------------------------------------

def unmount_rootfs(layout: Layout, container_id: str) -> None:
    """Unmount the rootfs and, on the loop path, the quota filesystem (detaching its loop device)."""
    umount(merged_dir(layout, container_id))
    if _uses_loop(layout, container_id) or _upper_fs(layout, container_id).exists():
        _unmount_upper_fs(layout, container_id)


def remove_rw_layer(layout: Layout, container_id: str) -> None:
    """Unmount everything and delete overlay/<cid>/: nothing left, loop device detached."""
    d = _dir(layout, container_id)
    if not os.path.lexists(d):
        return
    unmount_rootfs(layout, container_id)     # on the loop path this also detaches its device
    still = mounts_under(d)
    if still:
        raise StorageError(f"cannot remove {d}: still mounted at {', '.join(map(str, still))}")
    projid = quota.read_projid(d / "quota.json")
    if projid is not None:
        try:
            quota.set_project_limit(layout.overlay_dir, d, projid, 0)
        except OSError as e:    # the project id is freed with the record; a stale limit binds nothing
            log.debug("cannot clear the project quota %d of %s: %s", projid, d, e)
    try:
        remove_tree(d)
    except OSError as e:
        raise StorageError(f"cannot remove {e.filename or d}: {e.strerror or e}") from e
