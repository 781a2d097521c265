"""Container names: <root>/container-names/<name>, a symlink to the id of the container that
holds the name, so create checks and takes a name without reading every record (the check that
made each create of a stack cost more than the one before).

Changed under engine.mutation() only. The link is made before the record is saved, and removed
after the record's directory is gone, so a crash can only leave a link to a container that does
not hold the name: holder() sees that, removes the link and answers None. A record never holds a
name without its link; a root from before the index gets its links made once, on first use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from reconciler.core.errors import ConflictError
from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine.containers.store import all_records, load_readable

NAMES_DIR = "container-names"


def names_dir(engine) -> Path:
    """The index, made from the records the first time a root needs it."""
    path = engine.layout.root / NAMES_DIR
    if not path.is_dir():
        staging = path.with_name(f"{NAMES_DIR}.new")
        shutil.rmtree(staging, ignore_errors=True)          # an earlier build that was killed
        staging.mkdir(mode=0o700, parents=True)
        for rec in all_records(engine):
            if rec.name:
                try:
                    os.symlink(rec.id, staging / rec.name)
                except FileExistsError:
                    pass
        staging.rename(path)
    return path


def holder(engine, name: str) -> ContainerRecord | None:
    """The record of the container named `name`, or None (a stale link is removed)."""
    link = names_dir(engine) / name
    try:
        cid = os.readlink(link)
    except FileNotFoundError:
        return None
    rec = load_readable(engine, cid)
    if rec is not None and rec.name == name:
        return rec
    link.unlink(missing_ok=True)                            # left by a killed create or rm
    return None


def taken(engine) -> set[str]:
    """Every name held (perhaps a few that are not any more: stale links not yet seen)."""
    return set(os.listdir(names_dir(engine)))


def claim(engine, name: str, cid: str) -> None:
    """Take `name` for container `cid`; ConflictError if another container holds it."""
    link = names_dir(engine) / name
    try:
        os.symlink(cid, link)
        return
    except FileExistsError:
        pass
    other = holder(engine, name)
    if other is not None and other.id != cid:
        raise ConflictError(f'Conflict. The container name "/{name}" is already in use by '
                            f'container "{other.id}". You have to remove (or rename) that '
                            f'container to be able to reuse that name.')
    if other is None:
        os.symlink(cid, link)


def release(engine, name: str, cid: str) -> None:
    """`name` freed, if container `cid` holds it."""
    link = engine.layout.root / NAMES_DIR / name
    try:
        if os.readlink(link) == cid:
            link.unlink()
    except FileNotFoundError:
        pass
