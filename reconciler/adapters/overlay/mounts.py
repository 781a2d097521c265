"""The mount table and the mount(2)/umount2(2) calls the overlay adapter needs.

mount(2) and umount2(2) go through ctypes rather than mount(8)/umount(8): they are on every
`run`'s path, and each of those programs costs an exec.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import subprocess
from pathlib import Path

from reconciler.core.errors import StorageError
from reconciler.core.mountinfo import parse

MNT_DETACH = 2


@functools.cache
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                          ctypes.c_char_p]
    lib.quotactl.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    return lib


def mounts() -> dict[str, tuple[str, str, str]]:
    """Mount point (as the kernel spells it) -> (fstype, source, super options), from
    /proc/self/mountinfo (the last mount on a point wins)."""
    text = Path("/proc/self/mountinfo").read_text()
    return {m.point: (m.fstype, m.source, m.options) for m in parse(text)}


def is_mounted(path: str | os.PathLike) -> bool:
    return os.path.realpath(path) in mounts()


def mounts_under(path: str | os.PathLike) -> list[Path]:
    """The mount points at or below path, deepest first (the order to unmount them in)."""
    prefix = os.path.realpath(path)
    found = (m for m in mounts() if m == prefix or m.startswith(prefix + "/"))
    return [Path(m) for m in sorted(found, key=len, reverse=True)]


def backing_mount(path: str | os.PathLike) -> tuple[str, str, str, str]:
    """(mount point, fstype, source, super options) of the filesystem holding `path`."""
    path_real = os.path.realpath(path)
    best = ("/", "", "", "")
    for mnt, (fstype, source, options) in mounts().items():
        if (path_real == mnt or path_real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
            best = (mnt, fstype, source, options)
    return best


def mount_overlay(target: Path, data: str) -> int:
    """mount(2) an overlay at target with these options: 0, or the errno it failed with."""
    if libc().mount(b"overlay", os.fsencode(target), b"overlay", 0, data.encode()) == 0:
        return 0
    return ctypes.get_errno()


def umount(path: str | os.PathLike) -> None:
    """Unmount if mounted; fall back to a lazy unmount when busy. No error if not mounted."""
    target = os.fsencode(os.path.realpath(path))
    for flags in (0, MNT_DETACH):
        if libc().umount2(target, flags) == 0:
            return
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return  # not a mount point (any more)
        if err != errno.EBUSY:
            raise StorageError(f"cannot unmount {path}: {os.strerror(err)}")
    raise StorageError(f"cannot unmount {path}: busy")


def run(cmd: list[str | os.PathLike], what: str, cwd: str | os.PathLike | None = None) -> None:
    """Run a util-linux command; StorageError with its message if it fails."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise StorageError(f"{what} failed: {cmd[0]} not found", hint="install util-linux") from None
    if proc.returncode != 0:
        raise StorageError(f"{what} failed: {(proc.stderr or proc.stdout).strip()}")
