"""The stop claim: a shared flock on <container dir>/stop.lock, held by a command from before it
signals a container until it has released what the container held (stop, down, rm -f, restart).

conmon's exit command (reconciler.exit_hook) finds it held and exits at once: the stopper reaps
the container itself, so the exit command would only wait for the lock to find nothing left to
do. Kept below everything else in engine.containers (os and fcntl only): the exit hook imports it
before it knows whether it needs anything more. A claim dies with its holder, so a killed stop
leaves the exit command (or the next command's reap) to do the cleanup as before.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

CLAIM_FILE = "stop.lock"


class StopClaim:
    """`with StopClaim(container_dir):`, or acquire()/release(). Best effort: a claim that cannot
    be taken (the container is gone, no file descriptor left) only costs the exit command's work."""

    def __init__(self, container_dir: str | os.PathLike):
        self.path = Path(container_dir) / CLAIM_FILE
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)      # many stoppers may hold it; the hook tests for any
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> StopClaim:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_held(path: str | os.PathLike, missing: type[OSError] = OSError) -> bool:
    """Whether a live process holds a flock on path; False when opening it raises `missing`."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except missing:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def claimed(container_dir: str | os.PathLike) -> bool:
    """Whether a live command holds the container's stop claim."""
    return lock_held(Path(container_dir) / CLAIM_FILE)
