"""State files on disk: atomic JSON writes and the one lock for mutations.

A crash at any line leaves either the old or the new file, never a torn one:
write a temp file in the same directory, fsync it, rename it over, fsync the directory.
Paths are plain strings (os.PathLike accepted): pathlib, json and contextlib cost ~20 ms of
imports, which every command would pay.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from reconciler.core import jsontext
from reconciler.core.errors import LockTimeout, StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o600) -> None:
    path = os.fspath(path)
    parent, name = os.path.split(path)
    parent = parent or "."
    os.makedirs(parent, mode=0o700, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(parent)


def write_json(path: str | os.PathLike, obj: Any, mode: int = 0o600) -> None:
    atomic_write(path, (jsontext.dumps(obj, sort_keys=True) + "\n").encode(), mode)


def read_json(path: str | os.PathLike, default: Any = ...) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if default is ...:
            raise
        return default
    try:
        return jsontext.loads(data)
    except ValueError as e:     # json.JSONDecodeError; UnicodeDecodeError for bytes not UTF-8
        where = f" at line {e.lineno}" if hasattr(e, "lineno") else ""
        raise StorageError(f"{os.fspath(path)}: corrupt state file ({getattr(e, 'msg', e)}{where})",
                           hint="run `docker-mini system check`") from None


class locked:
    """Hold the engine lock (exclusive: for mutations) for the `with` block."""

    def __init__(self, lock_file: str | os.PathLike, timeout: float = 120.0):
        self.lock_file, self.timeout = os.fspath(lock_file), timeout
        self.fd = -1

    def __enter__(self) -> None:
        lock_file, timeout = self.lock_file, self.timeout
        os.makedirs(os.path.dirname(lock_file) or ".", mode=0o700, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise LockTimeout(f"another docker-mini command has held {lock_file} "
                                          f"for over {timeout:.0f}s") from None
                    time.sleep(0.02)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *exc) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)
