"""The container records on disk: overlay-containers/<id>/container.json (records.ContainerRecord),
and the paths beside it.

The bottom of engine.containers: load, save, list and resolve records. Nothing here looks at
processes (see liveness) or changes anything but the record file. Reads take no lock and
tolerate records that vanish under them; writes happen under engine.mutation().
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from reconciler.core.errors import ContainerNotFound, InvalidArgument, StorageError
from reconciler.core.timestamps import rfc3339
from reconciler.engine.containers.records import ContainerRecord

RECORD_FILE = "container.json"


def now_iso() -> str:
    return rfc3339(time.time_ns())


def iso_of_mtime(path: str | os.PathLike) -> str | None:
    try:
        return rfc3339(os.stat(path).st_mtime_ns)
    except FileNotFoundError:
        return None


def container_dir(engine, cid: str) -> Path:
    return engine.layout.container_dir(cid)


def record_path(engine, cid: str) -> Path:
    return container_dir(engine, cid) / RECORD_FILE


def load(engine, cid: str) -> ContainerRecord | None:
    """The record, None if there is none; StorageError if it cannot be read."""
    path = record_path(engine, cid)
    try:
        data = engine.state_files.read_json(path, default=None)
    except NotADirectoryError:
        return None
    if data is None:
        return None
    try:
        return ContainerRecord.from_json(data)
    except (ValueError, TypeError) as e:
        raise StorageError(f"container record {path} is not valid: {e}") from None


def save(engine, rec: ContainerRecord, durable: bool = False) -> None:
    """Atomic always (a killed command leaves the old or the new record); fsynced only for the
    record create publishes (unless --rm): the running/exited states do not outlive the host anyway."""
    path = record_path(engine, rec.id)
    data = rec.to_json()
    if durable:
        engine.state_files.write_json(path, data)
    else:
        write_file(path, (json.dumps(data, sort_keys=True) + "\n").encode())


def write_file(path: str | os.PathLike, data: bytes, mode: int = 0o600) -> None:
    """Atomic replace without fsync: for files that are regenerated (config.json, etc files)
    or whose loss in a power cut does not matter."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ids(engine) -> list[str]:
    try:
        return [p.name for p in engine.layout.containers_dir.iterdir()
                if len(p.name) == 64 and not p.name.startswith(".")]
    except FileNotFoundError:
        return []


def load_readable(engine, cid: str) -> ContainerRecord | None:
    """The record, or None if it is gone or unreadable. One corrupt record (a torn write after a
    power cut) must not break ps, names and every other container: `system check` reports it."""
    try:
        return load(engine, cid)
    except StorageError:
        return None


def unreadable_records(engine) -> list[str]:
    return [cid for cid in ids(engine)
            if record_path(engine, cid).exists()
            and load_readable(engine, cid) is None]


def all_records(engine) -> list[ContainerRecord]:
    out = []
    for cid in ids(engine):
        rec = load_readable(engine, cid)
        if rec and rec.id == cid:
            out.append(rec)
    return out


_HEX = frozenset("0123456789abcdefABCDEF")


def resolve(engine, name_or_id: str) -> ContainerRecord:
    """The record of the container named or identified (full id, name, or unique id prefix)."""
    key = (name_or_id or "").strip().lstrip("/")
    if not key:
        raise ContainerNotFound("No such container: (empty name)")
    known = ids(engine)
    if key in known:
        rec = load(engine, key)          # asked for by id: say so if it is unreadable
        if rec:
            return rec
    records = [r for r in (load_readable(engine, c) for c in known) if r]
    for rec in records:
        if rec.name == key:
            return rec
    hits = [r for r in records if r.id.startswith(key.lower())] if _HEX.issuperset(key) else []
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise InvalidArgument(f"multiple containers match id prefix {key!r}: give more characters")
    raise ContainerNotFound(f"No such container: {name_or_id}")


def monitor_paths(engine, cid: str):
    """conmon's files of the container (pid file, exit dir, log, oom marker)."""
    return engine.processes.MonitorPaths(container_dir(engine, cid))
