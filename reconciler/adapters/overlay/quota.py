"""A container's disk quota: a project quota where the backing filesystem enforces them (xfs,
or ext4 mounted with prjquota), else a sparse loop-backed ext4 image holding the upper layer.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import logging
import os
import struct
import subprocess
import time
from pathlib import Path

from reconciler.adapters.overlay.mounts import backing_mount, libc
from reconciler.core.errors import QuotaUnsupported, StorageError

log = logging.getLogger(__name__)

MIN_LOOP_SIZE = 1 << 20            # smaller ext4 images cannot hold a filesystem worth the name
LOOP_CLR_FD = 0x4C01
_EXT4_MAGIC_OFFSET, _EXT4_MAGIC = 1080, b"\x53\xef"


def quota_method(path: str | os.PathLike) -> str:
    """'project' where the filesystem holding `path` enforces project quotas, else 'loop'."""
    _mnt, fstype, _source, options = backing_mount(path)
    opts = set(options.split(","))
    if fstype == "xfs" and opts & {"prjquota", "pquota"}:
        return "project"
    if fstype == "ext4" and "prjquota" in opts:
        return "project"
    return "loop"


# ----- loop devices ----------------------------------------------------------------------------

def loop_devices_for(image: str | os.PathLike) -> list[Path]:
    """The /dev/loopN devices backed by `image` (also after it was deleted)."""
    target = os.path.realpath(image)
    found = []
    for block in Path("/sys/block").glob("loop*"):
        try:
            backing = (block / "loop" / "backing_file").read_text().rstrip("\n")
        except OSError:
            continue        # not attached
        if backing.removesuffix(" (deleted)") == target:
            found.append(Path("/dev", block.name))
    return sorted(found)


def detach_loops(image: Path) -> None:
    # A device of ours may still be releasing after its last unmount (autoclear): give it a
    # moment, then detach whatever remains ourselves.
    for _ in range(50):
        devices = loop_devices_for(image)
        if not devices:
            return
        for dev in devices:
            try:
                fd = os.open(dev, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.ioctl(fd, LOOP_CLR_FD)
            except OSError as e:
                if e.errno not in (errno.ENXIO, errno.EBUSY):
                    raise StorageError(f"cannot detach {dev} from {image}: {e.strerror}") from e
            finally:
                os.close(fd)
        time.sleep(0.02)
    raise StorageError(f"loop devices {', '.join(map(str, loop_devices_for(image)))} for {image} "
                       "stay attached", hint="something still holds its filesystem open")


# ----- project quota -----------------------------------------------------------------------------

_FS_IOC_FSGETXATTR, _FS_IOC_FSSETXATTR = 0x801C581F, 0x401C5820
_FSXATTR = "=IIIII8x"        # struct: xflags, extsize, nextents, projid, cowextsize
_FS_XFLAG_PROJINHERIT = 0x200
_Q_XSETQLIM, _PRJQUOTA = 0x5804, 2
_FS_DQUOT_VERSION, _FS_PROJ_QUOTA, _FS_DQ_BSOFT, _FS_DQ_BHARD = 1, 2, 1 << 2, 1 << 3
_FS_DISK_QUOTA = "=bbHIQQQQQQiiHHbbbbQQQiHh8x"     # struct fs_disk_quota


def _quotactl_device(overlay_dir: Path, path: Path) -> Path:
    """A block device node for the backing fs (quotactl wants one; containers/storage does the same)."""
    st = path.stat()
    node = overlay_dir / "backingFsBlockDev"
    try:
        if node.stat().st_rdev == st.st_dev:
            return node
        node.unlink()
    except FileNotFoundError:
        pass
    os.mknod(node, 0o600 | 0o060000, st.st_dev)
    return node


def set_project_limit(overlay_dir: Path, path: Path, projid: int, size: int) -> None:
    """Q_XSETQLIM: a hard block limit of `size` bytes (0 = none) for project `projid`."""
    blocks = (size + 511) // 512                 # in 512-byte basic blocks
    dq = ctypes.create_string_buffer(struct.pack(_FS_DISK_QUOTA,
        _FS_DQUOT_VERSION, _FS_PROJ_QUOTA, _FS_DQ_BHARD | _FS_DQ_BSOFT, projid, blocks, blocks,
        *([0] * 18)))
    dev = os.fsencode(_quotactl_device(overlay_dir, path))
    if libc().quotactl((_Q_XSETQLIM << 8) | _PRJQUOTA, dev, projid, dq) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def set_project_quota(overlay_dir: Path, layer_dir: Path, size: int) -> None:
    """Give layer_dir a project of its own (recorded in its quota.json) limited to size bytes."""
    record = layer_dir / "quota.json"
    projid = read_projid(record)
    if projid is None:
        used = {read_projid(d / "quota.json")
                for d in overlay_dir.iterdir() if not d.name.startswith(".")} - {None}
        projid = max(used | {100000}) + 1
    fd = os.open(layer_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(struct.calcsize(_FSXATTR))
        fcntl.ioctl(fd, _FS_IOC_FSGETXATTR, buf)
        xflags, extsize, nextents, _old, cow = struct.unpack(_FSXATTR, buf)
        fcntl.ioctl(fd, _FS_IOC_FSSETXATTR,
                    struct.pack(_FSXATTR, xflags | _FS_XFLAG_PROJINHERIT, extsize, nextents, projid, cow))
    finally:
        os.close(fd)
    set_project_limit(overlay_dir, layer_dir, projid, size)
    tmp = layer_dir / ".quota.json.tmp"     # synced and renamed into place: never a torn record
    with tmp.open("w") as f:
        json.dump({"projid": projid, "size": size}, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(record)


def read_projid(record: Path) -> int | None:
    """The project id a container's quota.json names; None if absent or unreadable."""
    try:
        projid = json.loads(record.read_bytes())["projid"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:    # torn by a crash: no project
        log.debug("unreadable quota record %s: %r", record, e)
        return None
    return projid if isinstance(projid, int) else None


# ----- the loop-backed ext4 image ------------------------------------------------------------------

def has_ext4(image: Path) -> bool:
    try:
        with image.open("rb") as f:
            f.seek(_EXT4_MAGIC_OFFSET)
            return f.read(2) == _EXT4_MAGIC
    except FileNotFoundError:
        return False


def ext4_usable_bytes(image: str | os.PathLike) -> int:
    """What files can use on an unmounted ext4 image: its free blocks (superblock) less the
    clusters ext4 holds back at mount (min(2%, 4096 blocks)) and a little for our two dirs."""
    with open(image, "rb") as f:
        f.seek(1024)
        sb = f.read(1024)
    blocks_lo, free_lo, log_block = (struct.unpack_from("<I", sb, off)[0] for off in (4, 12, 24))
    blocks_hi, free_hi = (struct.unpack_from("<I", sb, off)[0] for off in (0x150, 0x158))
    block = 1024 << log_block
    blocks, free = blocks_lo | blocks_hi << 32, free_lo | free_hi << 32
    return (free - min(blocks // 50, 4096)) * block - 4 * block


def _mkfs(image: Path, size: int) -> None:
    with image.open("wb") as f:
        f.truncate(size)
    # -m 0: the container runs as root, which could use reserved blocks anyway; journal kept,
    # so a crash of the host leaves a filesystem that mounts.
    try:
        proc = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", image],
                              capture_output=True, text=True)
    except FileNotFoundError:
        image.unlink(missing_ok=True)
        raise QuotaUnsupported("a disk quota needs mkfs.ext4 on this host, which has no project "
                               "quotas, and it is not installed", hint="install e2fsprogs") from None
    if proc.returncode != 0:
        image.unlink(missing_ok=True)
        raise QuotaUnsupported(f"cannot make a {size}-byte ext4 image for the container's disk "
                               f"quota: {proc.stderr.strip()}")


def make_disk_image(image: Path, size: int) -> None:
    """A sparse ext4 image with `size` bytes usable: the image grows by what ext4's journal,
    metadata and reserve take (about 8% at 1 GB), so the container gets the space it asked for."""
    if has_ext4(image):
        return
    tmp = image.with_name(image.name + ".tmp")
    image_size = size
    for _ in range(4):
        _mkfs(tmp, image_size)
        deficit = size - ext4_usable_bytes(tmp)
        if deficit <= 0:
            break
        # The overhead grows with the image: overshoot the deficit a little to converge at once.
        image_size += -(-(deficit + deficit // 8) // 4096) * 4096
    tmp.replace(image)
