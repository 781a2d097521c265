"""State files on disk: atomic JSON writes and the one lock for mutations.

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

from reconciler.core.errors import LockTimeout, StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any, mode: int = 0o600) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode)


def read_json(path: Path, default: Any = ...) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        if default is ...:
            raise
        return default
    except json.JSONDecodeError as e:
        raise StorageError(f"{path}: corrupt state file ({e.msg} at line {e.lineno})",
                           hint="run `docker-mini system check`") from None


@contextlib.contextmanager
def locked(lock_file: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the engine lock (exclusive: for mutations)."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
        yield
    finally:
        os.close(fd)
