"""State files on disk: atomic writes, JSON reads, and the one lock for mutations.

A crash at any line leaves either the old or the new file, never a torn one:
write a temp file in the same directory, fsync it, rename it over, fsync the directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from reconciler.core.errors import LockTimeout, StorageError


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o600) -> None:
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: str | os.PathLike, obj: Any, mode: int = 0o600) -> None:
    atomic_write(path, (json.dumps(obj, sort_keys=True) + "\n").encode(), mode)


def read_json(path: str | os.PathLike, default: Any = ...) -> Any:
    """The file's JSON; `default` if it does not exist (FileNotFoundError without one).
    A file that is not JSON is a StorageError naming it."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        if default is ...:
            raise
        return default
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise StorageError(f"{path}: corrupt state file ({e.msg} at line {e.lineno})",
                           hint="run `docker-mini system check`") from None
    except UnicodeDecodeError as e:
        raise StorageError(f"{path}: corrupt state file ({e})",
                           hint="run `docker-mini system check`") from None


@contextlib.contextmanager
def locked(lock_file: str | os.PathLike, timeout: float = 120.0) -> Iterator[None]:
    """Hold the engine lock (exclusive: for mutations) for the `with` block."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
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
        yield
    finally:
        os.close(fd)
