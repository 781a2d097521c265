"""A container's storage: its read-write overlay layer, the rootfs mount, and the disk quota.

    overlay/<cid>/diff, work, merged          without a size limit
    overlay/<cid>/disk.img                    with a size on the loop path: a sparse ext4 image,
    overlay/<cid>/upper-fs/{diff,work}        mounted here (overlayfs needs upper and work on one fs);
    overlay/<cid>/diff -> upper-fs/diff       kept so overlay/<cid>/diff always names the upper dir
    overlay/<cid>/quota.json                  with a size on the project-quota path: the project id

The quota is a project quota where the backing filesystem enforces them (xfs or ext4 mounted
with prjquota), else a loop-backed ext4 image. The overlay mount names the lower layers by their
overlay/l/<short> links and runs with overlay/ as working directory, so the mount data stays
well under the kernel's one-page limit even for images with a hundred layers.

Every function can be re-run after a crash at any point to finish the job (create, mount) or
undo it (unmount, remove). Paths are plain strings (pathlib costs ~10 ms of imports on `run`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from reconciler.core import jsontext
from reconciler.core.errors import QuotaUnsupported, StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from reconciler.core.layout import Layout

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIN_LOOP_SIZE = 1 << 20            # smaller ext4 images cannot hold a filesystem worth the name
LOOP_CLR_FD = 0x4C01
_EXT4_MAGIC_OFFSET, _EXT4_MAGIC = 1080, b"\x53\xef"

MNT_DETACH = 2
_libc_handle = None


def _libc():
    """The C library through ctypes, loaded on first use: `import ctypes` (and libffi) costs
    ~1.6 ms, which mounting, unmounting and quotas need. Mounting and unmounting are on every
    `run`'s path: mount(8) and umount(8) cost an exec each (and subprocess ~4 ms to import)."""
    global _libc_handle
    if _libc_handle is None:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                               ctypes.c_char_p]
        libc.quotactl.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        _libc_handle = libc
    return _libc_handle


def _errno() -> int:
    import ctypes
    return ctypes.get_errno()


# ----- paths -----------------------------------------------------------------------------------

def _dir(layout: Layout, cid: str) -> str:
    return layout.rw_layer_dir(cid)


def merged_dir(layout: Layout, cid: str) -> str:
    return f"{_dir(layout, cid)}/merged"


def _disk_image(layout: Layout, cid: str) -> str:
    return f"{_dir(layout, cid)}/disk.img"


def _upper_fs(layout: Layout, cid: str) -> str:
    return f"{_dir(layout, cid)}/upper-fs"


def _uses_loop(layout: Layout, cid: str) -> bool:
    return os.path.exists(_disk_image(layout, cid))


def upper_dir(layout: Layout, cid: str) -> str:
    """The container's writable layer (what `docker diff` would read)."""
    if _uses_loop(layout, cid):
        return f"{_upper_fs(layout, cid)}/diff"
    return f"{_dir(layout, cid)}/diff"


def _work_dir(layout: Layout, cid: str) -> str:
    if _uses_loop(layout, cid):
        return f"{_upper_fs(layout, cid)}/work"
    return f"{_dir(layout, cid)}/work"


# ----- mount table -----------------------------------------------------------------------------

def mounts() -> dict[str, tuple[str, str, str]]:
    """Mount point -> (fstype, source, super options), from /proc/self/mountinfo (last wins)."""
    from reconciler.core.mountinfo import parse
    with open("/proc/self/mountinfo") as f:
        return {m.point: (m.fstype, m.source, m.options) for m in parse(f.read())}


def is_mounted(path: str | os.PathLike) -> bool:
    return os.path.realpath(path) in mounts()


def mounts_under(path: str | os.PathLike) -> list[str]:
    prefix = os.path.realpath(path)
    return sorted((m for m in mounts() if m == prefix or m.startswith(prefix + "/")),
                  key=len, reverse=True)


def _umount(path: str) -> None:
    """Unmount if mounted; fall back to a lazy unmount when busy. No error if not mounted."""
    target = os.fsencode(os.path.realpath(path))
    for flags in (0, MNT_DETACH):
        if _libc().umount2(target, flags) == 0:
            return
        err = _errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return  # not a mount point (any more)
        if err != errno.EBUSY:
            raise StorageError(f"cannot unmount {path}: {os.strerror(err)}")
    raise StorageError(f"cannot unmount {path}: busy")


def _run(cmd: list[str], what: str, cwd: str | None = None) -> None:
    import subprocess   # on first use (~5 ms of import); runc is started through it anyway
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise StorageError(f"{what} failed: {cmd[0]} not found", hint="install util-linux") from None
    if proc.returncode != 0:
        raise StorageError(f"{what} failed: {(proc.stderr or proc.stdout).strip()}")


# ----- loop devices ----------------------------------------------------------------------------

def loop_devices_for(image: str | os.PathLike) -> list[str]:
    """The /dev/loopN devices backed by `image` (also after it was deleted)."""
    target = os.path.realpath(image)
    found = []
    for name in os.listdir("/sys/block"):
        if not name.startswith("loop"):
            continue
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                backing = f.read().rstrip("\n")
        except OSError:
            continue
        if backing.removesuffix(" (deleted)") == target:
            found.append(f"/dev/{name}")
    return found


def _detach_loops(image: str) -> None:
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
    raise StorageError(f"loop devices {', '.join(loop_devices_for(image))} for {image} "
                       "stay attached", hint="something still holds its filesystem open")


# ----- project quota (xfs, or ext4 mounted with prjquota) -----------------------------------------

_FS_IOC_FSGETXATTR, _FS_IOC_FSSETXATTR = 0x801C581F, 0x401C5820
_FSXATTR = "=IIIII8x"        # struct: xflags, extsize, nextents, projid, cowextsize
_FS_XFLAG_PROJINHERIT = 0x200
_Q_XSETQLIM, _PRJQUOTA = 0x5804, 2
_FS_DQUOT_VERSION, _FS_PROJ_QUOTA, _FS_DQ_BSOFT, _FS_DQ_BHARD = 1, 2, 1 << 2, 1 << 3
_FS_DISK_QUOTA = "=bbHIQQQQQQiiHHbbbbQQQiHh8x"     # struct fs_disk_quota


def _backing_mount(path: str | os.PathLike) -> tuple[str, str, str, str]:
    """(mount point, fstype, source, super options) of the filesystem holding `path`."""
    path_real = os.path.realpath(path)
    best = ("/", "", "", "")
    for mnt, (fstype, source, options) in mounts().items():
        if (path_real == mnt or path_real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
            best = (mnt, fstype, source, options)
    return best


def quota_method(path: str | os.PathLike) -> str:
    """'project' where the filesystem holding `path` enforces project quotas, else 'loop'."""
    _mnt, fstype, _source, options = _backing_mount(path)
    opts = set(options.split(","))
    if fstype == "xfs" and opts & {"prjquota", "pquota"}:
        return "project"
    if fstype == "ext4" and "prjquota" in opts:
        return "project"
    return "loop"


def _quotactl_device(layout: Layout, path: str) -> str:
    """A block device node for the backing fs (quotactl wants one; containers/storage does the same)."""
    st = os.stat(path)
    node = f"{layout.overlay_dir}/backingFsBlockDev"
    try:
        if os.stat(node).st_rdev == st.st_dev:
            return node
        os.unlink(node)
    except FileNotFoundError:
        pass
    os.mknod(node, 0o600 | 0o060000, st.st_dev)
    return node


def _set_project_limit(layout: Layout, path: str, projid: int, size: int) -> None:
    """Q_XSETQLIM: a hard block limit of `size` bytes (0 = none) for project `projid`."""
    import ctypes
    import struct
    blocks = (size + 511) // 512                 # in 512-byte basic blocks
    dq = ctypes.create_string_buffer(struct.pack(_FS_DISK_QUOTA,
        _FS_DQUOT_VERSION, _FS_PROJ_QUOTA, _FS_DQ_BHARD | _FS_DQ_BSOFT, projid, blocks, blocks,
        *([0] * 18)))
    dev = os.fsencode(_quotactl_device(layout, path))
    if _libc().quotactl((_Q_XSETQLIM << 8) | _PRJQUOTA, dev, projid, dq) != 0:
        err = _errno()
        raise OSError(err, os.strerror(err))


def _set_project_quota(layout: Layout, cid: str, size: int) -> None:
    d = _dir(layout, cid)
    record = f"{d}/quota.json"
    projid = _read_projid(record)
    if projid is None:
        used = {_read_projid(f"{layout.overlay_dir}/{name}/quota.json")
                for name in os.listdir(layout.overlay_dir) if not name.startswith(".")} - {None}
        projid = max(used | {100000}) + 1
    import struct
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(struct.calcsize(_FSXATTR))
        fcntl.ioctl(fd, _FS_IOC_FSGETXATTR, buf)
        xflags, extsize, nextents, _old, cow = struct.unpack(_FSXATTR, buf)
        fcntl.ioctl(fd, _FS_IOC_FSSETXATTR,
                    struct.pack(_FSXATTR, xflags | _FS_XFLAG_PROJINHERIT, extsize, nextents, projid, cow))
    finally:
        os.close(fd)
    _set_project_limit(layout, d, projid, size)
    tmp = f"{d}/.quota.json.tmp"     # synced and renamed into place: never a torn record
    with open(tmp, "w") as f:
        f.write(jsontext.dumps({"projid": projid, "size": size}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, record)


def _read_projid(record: str) -> int | None:
    """The project id a container's quota.json names; None if absent or unreadable."""
    try:
        with open(record, "rb") as f:
            projid = jsontext.loads(f.read())["projid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return projid if isinstance(projid, int) else None


# ----- the loop-backed ext4 upper filesystem -----------------------------------------------------

def _has_ext4(image: str) -> bool:
    try:
        with open(image, "rb") as f:
            f.seek(_EXT4_MAGIC_OFFSET)
            return f.read(2) == _EXT4_MAGIC
    except FileNotFoundError:
        return False


def ext4_usable_bytes(image: str | os.PathLike) -> int:
    """What files can use on an unmounted ext4 image: its free blocks (superblock) less the
    clusters ext4 holds back at mount (min(2%, 4096 blocks)) and a little for our two dirs."""
    import struct
    with open(image, "rb") as f:
        f.seek(1024)
        sb = f.read(1024)
    blocks_lo, free_lo, log_block = (struct.unpack_from("<I", sb, off)[0] for off in (4, 12, 24))
    blocks_hi, free_hi = (struct.unpack_from("<I", sb, off)[0] for off in (0x150, 0x158))
    block = 1024 << log_block
    blocks, free = blocks_lo | blocks_hi << 32, free_lo | free_hi << 32
    return (free - min(blocks // 50, 4096)) * block - 4 * block


def _mkfs(image: str, size: int) -> None:
    with open(image, "wb") as f:
        f.truncate(size)
    # -m 0: the container runs as root, which could use reserved blocks anyway; journal kept,
    # so a crash of the host leaves a filesystem that mounts.
    import subprocess
    try:
        proc = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", image],
                              capture_output=True, text=True)
    except FileNotFoundError:
        _unlink_if_there(image)
        raise QuotaUnsupported("a disk quota needs mkfs.ext4 on this host, which has no project "
                               "quotas, and it is not installed", hint="install e2fsprogs") from None
    if proc.returncode != 0:
        _unlink_if_there(image)
        raise QuotaUnsupported(f"cannot make a {size}-byte ext4 image for the container's disk "
                               f"quota: {proc.stderr.strip()}")


def _unlink_if_there(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _make_disk_image(layout: Layout, cid: str, size: int) -> None:
    """A sparse ext4 image with `size` bytes usable: the image grows by what ext4's journal,
    metadata and reserve take (about 8% at 1 GB), so the container gets the space it asked for."""
    image = _disk_image(layout, cid)
    if _has_ext4(image):
        return
    tmp = f"{_dir(layout, cid)}/disk.img.tmp"
    image_size = size
    for _ in range(4):
        _mkfs(tmp, image_size)
        deficit = size - ext4_usable_bytes(tmp)
        if deficit <= 0:
            break
        # The overhead grows with the image: overshoot the deficit a little to converge at once.
        image_size += -(-(deficit + deficit // 8) // 4096) * 4096
    os.replace(tmp, image)


def _mount_upper_fs(layout: Layout, cid: str) -> None:
    fs = _upper_fs(layout, cid)
    os.makedirs(fs, exist_ok=True)
    if not is_mounted(fs):
        # mount(8) attaches the loop device with autoclear: it detaches itself at unmount.
        try:
            _run(["mount", "-t", "ext4", "-o", "loop", _disk_image(layout, cid), fs],
                 f"mounting the quota filesystem of container {cid}")
        except StorageError as e:
            raise QuotaUnsupported(f"{e.message} (the disk quota needs a loop device on this host)",
                                   hint="check /dev/loop-control and the loop module") from None
    for sub in ("diff", "work"):
        os.makedirs(f"{fs}/{sub}", 0o755, exist_ok=True)


def _unmount_upper_fs(layout: Layout, cid: str) -> None:
    _umount(_upper_fs(layout, cid))
    _detach_loops(_disk_image(layout, cid))


# ----- public ----------------------------------------------------------------------------------

def create_rw_layer(layout: Layout, container_id: str, size_bytes: int | None = None) -> str:
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
        method = quota_method(layout.overlay_dir if os.path.exists(layout.overlay_dir) else layout.root)
    if size_bytes is not None and method == "loop" and size_bytes < MIN_LOOP_SIZE:
        raise QuotaUnsupported(
            f"storage size {size_bytes} bytes is too small: this host limits a container's "
            f"disk with a loop-backed ext4 filesystem, which needs at least 1MB",
            hint="use --storage-opt size=1m or more")
    fresh = not os.path.exists(d)
    os.makedirs(d, mode=0o700, exist_ok=True)
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
            _set_project_quota(layout, container_id, size_bytes)
        except OSError:
            pass    # the kernel refused after all: the loop path below still works
        else:
            size_bytes = None
    if size_bytes is not None or _uses_loop(layout, container_id):
        _make_disk_image(layout, container_id, size_bytes or 0)
        _mount_upper_fs(layout, container_id)
        diff = f"{d}/diff"
        if not os.path.islink(diff):
            if os.path.isdir(diff):
                os.rmdir(diff)
            os.symlink("upper-fs/diff", diff)
    else:
        for sub in ("diff", "work"):
            os.makedirs(f"{d}/{sub}", 0o755, exist_ok=True)
    os.makedirs(f"{d}/merged", 0o755, exist_ok=True)


def overlay_mount_data(layout: Layout, container_id: str, lowerdirs: list[str], *,
                       relative: bool = True) -> str:
    """The overlay mount options, with paths relative to overlay/ (the mount's working dir:
    what keeps many layers within the kernel's one page of options) or absolute."""
    base = layout.overlay_dir
    upper, work = upper_dir(layout, container_id), _work_dir(layout, container_id)
    if relative:
        return (f"lowerdir={':'.join(lowerdirs)},upperdir={os.path.relpath(upper, base)},"
                f"workdir={os.path.relpath(work, base)}")
    lowers = ":".join(os.path.join(base, d) for d in lowerdirs)
    return f"lowerdir={lowers},upperdir={upper},workdir={work}"


def mount_rootfs(layout: Layout, container_id: str, lowerdirs: list[str], *,
                 volatile: bool = False) -> str:
    """Mount the container's rootfs at overlay/<cid>/merged (no-op if mounted); returns it.

    lowerdirs are LayerStore.lowerdirs(): "l/<short>" entries, topmost first. volatile (for
    --rm containers, as Podman does): overlay skips every sync to the upper layer, the
    unmount's included; what a container removed at its end writes need not survive a crash.
    """
    merged = merged_dir(layout, container_id)
    if is_mounted(merged):
        return merged
    d = _dir(layout, container_id)
    if not os.path.isdir(d):
        raise StorageError(f"container {container_id} has no read-write layer at {d}")
    if _uses_loop(layout, container_id):
        _mount_upper_fs(layout, container_id)
    if not lowerdirs:   # an image without layers: overlay still needs one lower directory
        os.makedirs(f"{d}/empty", exist_ok=True)
        lowerdirs = [os.path.relpath(f"{d}/empty", layout.overlay_dir)]
    for lower in lowerdirs:
        path = os.path.join(layout.overlay_dir, lower)
        if not os.path.isdir(path):
            raise StorageError(f"layer {lower} of container {container_id} is missing ({path})",
                               hint="the image's layers were removed; pull the image again")
    os.makedirs(merged, exist_ok=True)
    _clear_volatile_mark(layout, container_id)
    extra = ""
    if volatile:
        _write_small(f"{d}/{_VOLATILE_BOOT}", _boot_id())
        extra = ",volatile"
    absolute = overlay_mount_data(layout, container_id, lowerdirs, relative=False) + extra
    if len(absolute) < PAGE_SIZE:
        if _libc().mount(b"overlay", os.fsencode(merged), b"overlay", 0, absolute.encode()) == 0:
            return merged
        err = _errno()
        if not (extra and err == errno.EINVAL):
            raise StorageError(f"mounting the rootfs of container {container_id} failed: "
                               f"{os.strerror(err)}")
        return mount_rootfs(layout, container_id, lowerdirs)     # a kernel before 5.10
    # only the paths relative to overlay/ (always the shorter) may fit: mount(8) run there
    data = overlay_mount_data(layout, container_id, lowerdirs) + extra
    if len(data) >= PAGE_SIZE:
        raise StorageError(f"overlay mount options for container {container_id} are {len(data)} "
                           f"bytes, over the kernel's {PAGE_SIZE}-byte limit "
                           f"({len(lowerdirs)} layers)")
    _run(["mount", "-t", "overlay", "overlay", "-o", data, merged],
         f"mounting the rootfs of container {container_id}", cwd=layout.overlay_dir)
    return merged


_VOLATILE_BOOT = "volatile-boot"     # the boot (its random id) of the last volatile mount


def _clear_volatile_mark(layout: Layout, container_id: str) -> None:
    """A volatile mount leaves work/work/incompat/volatile behind, and overlay refuses the next
    mount while it is there. Left in this boot, it only marks an earlier mount: what that one
    did not sync is still in the page cache. Left in another: the host went down while it was
    mounted, and what was written may be lost."""
    mark = f"{_work_dir(layout, container_id)}/work/incompat/volatile"
    if not os.path.lexists(mark):
        return
    try:
        with open(f"{_dir(layout, container_id)}/{_VOLATILE_BOOT}") as f:
            same_boot = f.read() == _boot_id()
    except FileNotFoundError:
        same_boot = False
    if not same_boot:
        raise StorageError(f"the read-write layer of container {container_id[:12]} was mounted "
                           f"without syncing (--rm) when the host went down: its files may be "
                           f"incomplete", hint=f"remove the container: docker-mini rm {container_id[:12]}")
    remove_tree(mark)


def _boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def _write_small(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def unmount_rootfs(layout: Layout, container_id: str) -> None:
    """Unmount the rootfs and, on the loop path, the quota filesystem (detaching its loop device)."""
    _umount(merged_dir(layout, container_id))
    if _uses_loop(layout, container_id) or os.path.exists(_upper_fs(layout, container_id)):
        _unmount_upper_fs(layout, container_id)


def remove_rw_layer(layout: Layout, container_id: str) -> None:
    """Unmount everything and delete overlay/<cid>/: nothing left, loop device detached."""
    d = _dir(layout, container_id)
    if not os.path.lexists(d):
        return
    unmount_rootfs(layout, container_id)     # on the loop path this also detaches its device
    still = mounts_under(d)
    if still:
        raise StorageError(f"cannot remove {d}: still mounted at {', '.join(still)}")
    projid = _read_projid(f"{d}/quota.json")
    if projid is not None:
        try:
            _set_project_limit(layout, d, projid, 0)
        except OSError:
            pass    # the project id is freed with the record; a stale limit binds nothing
    try:
        remove_tree(d)
    except OSError as e:
        raise StorageError(f"cannot remove {e.filename or d}: {e.strerror}") from e


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a directory tree without following symlinks, as shutil.rmtree does, but without
    importing shutil (~2 ms here: it loads zlib, bz2 and lzma), which `run --rm` would pay.
    Works through directory descriptors, so a deep tree never makes a path too long."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        _remove_contents(fd, os.fsdecode(path))
    finally:
        os.close(fd)
    os.rmdir(path)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _remove_contents(dir_fd: int, where: str) -> None:
    with os.scandir(dir_fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        if not is_dir:
            _at(where, name, os.unlink, name, dir_fd=dir_fd)
            continue
        fd = _at(where, name, os.open, name, _DIR_FLAGS, dir_fd=dir_fd)
        if fd is None:
            continue        # gone meanwhile
        try:
            _remove_contents(fd, f"{where}/{name}")
        finally:
            os.close(fd)
        _at(where, name, os.rmdir, name, dir_fd=dir_fd)


def _at(where: str, name: str, func, *args, **kwargs):
    """func(*args, **kwargs) on the entry `name` of directory `where`: None if the entry is
    gone, and other errors name its whole path."""
    try:
        return func(*args, **kwargs)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"{where}/{name}") from None
