"""Deleting a directory tree of any depth.

Python 3.11's shutil.rmtree recurses once per directory level, so a container that made a
tree deeper than the interpreter's recursion limit (about 1,000) could never be removed. This
walk is iterative and holds one directory descriptor at a time (a deep tree never exhausts
the descriptor limit nor makes a path too long). It never follows a symlink: every directory
is opened with O_NOFOLLOW relative to its parent, and climbing back up through ".." checks
that the parent is still the directory it came from.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class _Level:
    name: str                   # the directory's name in its parent
    where: Path                 # its whole path, for error messages
    identity: tuple[int, int]   # (st_dev, st_ino)
    subdirs: list[str] = field(default_factory=list)     # still to descend into


def remove_tree(path: str | os.PathLike) -> None:
    """Delete the directory `path` and everything below it, like shutil.rmtree without its
    recursion. Entries that vanish meanwhile are fine; other errors are OSErrors naming the
    entry's whole path."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        top = Path(path)
        stack = [_Level("", top, _identity(fd), _clear_files(fd, top))]
        while True:
            level = stack[-1]
            if level.subdirs:
                name = level.subdirs.pop()
                child = _open_subdir(fd, level.where, name)
                if child is None:
                    continue
                os.close(fd)
                fd = child
                where = level.where / name
                stack.append(_Level(name, where, _identity(fd), _clear_files(fd, where)))
                continue
            if len(stack) == 1:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            stack.pop()
            if _identity(fd) != stack[-1].identity:
                raise OSError(f"{level.where} was moved while it was being removed")
            _at(stack[-1].where, level.name, os.rmdir, level.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _clear_files(dir_fd: int, where: Path) -> list[str]:
    """Unlink every entry of the directory that is not a directory; the names of those that are."""
    subdirs = []
    with os.scandir(dir_fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        if is_dir:
            subdirs.append(name)
        else:
            _at(where, name, os.unlink, name, dir_fd=dir_fd)
    return subdirs


def _open_subdir(dir_fd: int, where: Path, name: str) -> int | None:
    """A descriptor of the subdirectory, or None if it is gone; one that turned into a
    symlink or a file meanwhile is unlinked instead."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise OSError(e.errno, e.strerror, where / name) from None
    _at(where, name, os.unlink, name, dir_fd=dir_fd)
    return None


def _at(where: Path, name: str, func, *args, **kwargs):
    """func(*args, **kwargs) on the entry `name` of directory `where`: None if the entry is
    gone, and other errors name its whole path."""
    try:
        return func(*args, **kwargs)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OSError(e.errno, e.strerror, where / name) from None
