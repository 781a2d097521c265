"""conmon's attach sockets: where a container's is, and where conmon puts the symlinks to them
when the bundle path is too long for a socket's address. Apart from the store so that reading
records does not load hashlib (OpenSSL)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine.containers.store import container_dir


def socket_dir(engine) -> Path:
    """Where conmon puts attach-socket symlinks when the bundle path is too long for a socket."""
    short = engine.layout.root / "s"
    if len(str(short)) + 1 + 12 + len("/attach") <= 100:
        return short
    return Path("/run/docker-mini") / hashlib.sha256(str(engine.layout.root).encode()).hexdigest()[:12]


def attach_socket_path(engine, rec: ContainerRecord) -> Path:
    """conmon's attach socket of a running container (for attach and foreground run)."""
    direct = container_dir(engine, rec.id) / "attach"
    if len(str(direct)) <= engine.processes.SUN_PATH_MAX:
        return direct
    return socket_dir(engine) / rec.short_id / "attach"
