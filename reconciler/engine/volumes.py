"""Named volumes: <root>/volumes/NAME/_data holds the data, <root>/volumes/NAME/volume.json
its metadata (written atomically). A volume is made by `volume create`, or by the first
container that names it (as Docker does); it outlives its containers, and `rm` of one that a
container (running or not) uses is refused.

On first use an empty volume is filled from the image's content at the mount point, owners,
modes, links and extended attributes kept (Docker's copy-up); a volume that holds anything is
mounted as it is.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from reconciler.core.errors import ConflictError, DockerMiniError, InvalidArgument
from reconciler.core.labels import STACK

NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
META = "volume.json"


def volumes_dir(engine) -> Path:
    return engine.root / "volumes"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidArgument(f'"{name}" includes invalid characters for a local volume name, only '
                              '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                              'directory, use absolute path')
    return name


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta_path(engine, name: str) -> Path:
    return volumes_dir(engine) / name / META


def data_path(engine, name: str) -> Path:
    return volumes_dir(engine) / name / "_data"


def inspect(engine, name: str) -> dict:
    """Docker's shape: CreatedAt, Driver, Labels, Mountpoint, Name, Options, Scope."""
    check_name(name)
    try:
        meta = json.loads(_meta_path(engine, name).read_text())
    except FileNotFoundError:
        raise DockerMiniError(f"get {name}: no such volume") from None
    except (OSError, ValueError) as e:
        raise DockerMiniError(f"volume {name}: unreadable metadata: {e}") from None
    meta["Mountpoint"] = str(data_path(engine, name))
    return meta


def exists(engine, name: str) -> bool:
    return _meta_path(engine, name).is_file()


def list_volumes(engine) -> list[dict]:
    out = []
    try:
        names = sorted(os.listdir(volumes_dir(engine)))
    except FileNotFoundError:
        return []
    for name in names:
        if NAME.fullmatch(name) and exists(engine, name):
            try:
                out.append(inspect(engine, name))
            except DockerMiniError:
                continue
    return out


def create(engine, name: str | None = None, labels: dict | None = None) -> dict:
    """Create a volume (a random name when none is given); an existing one is returned as it is."""
    with engine.mutation():
        return _ensure(engine, name or os.urandom(32).hex(), labels or {})


def _ensure(engine, name: str, labels: dict) -> dict:
    check_name(name)
    if exists(engine, name):
        return inspect(engine, name)
    data = data_path(engine, name)
    volumes_dir(engine).mkdir(mode=0o700, parents=True, exist_ok=True)
    if data.parent.exists():
        # a directory without metadata is what an interrupted rm (or create) left: never
        # hand its old data to a new volume of the same name
        shutil.rmtree(data.parent)
    data.parent.mkdir(mode=0o700)
    data.mkdir(mode=0o755, exist_ok=True)
    meta = {"CreatedAt": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
            "Driver": "local", "Labels": dict(labels), "Name": name, "Options": {}, "Scope": "local"}
    _atomic_write(_meta_path(engine, name), json.dumps(meta, indent=2).encode())
    return inspect(engine, name)


def named_sources(volume_specs) -> list[str]:
    """The volume names among -v specs (NAME:/path[:ro]); bind mounts start with /."""
    return [v.split(":", 1)[0] for v in volume_specs if not v.startswith("/")]


def ensure_for_container(engine, volume_specs, labels: dict) -> None:
    """Create the named volumes a new container uses that do not exist yet (as Docker does).
    A stack's container makes its stack's volumes (<stack>_<key>) labelled with the stack."""
    stack = labels.get(STACK)
    for name in named_sources(volume_specs):
        own = {STACK: stack} if stack and name.startswith(f"{stack}_") else {}
        _ensure(engine, name, own)


def users(engine, name: str) -> list:
    """The containers (records, any state) whose mounts name this volume."""
    from reconciler.engine.containers.store import all_records

    return [r for r in all_records(engine) if name in named_sources(r.options.volumes)]


def mount_source(engine, name: str, rootfs: str, dest_in_rootfs: str) -> str:
    """The host directory to bind for volume `name` at `dest_in_rootfs` (already resolved inside
    the rootfs); an empty volume is first filled from what the image has there (copy-up)."""
    if not exists(engine, name):
        with engine.mutation():
            _ensure(engine, name, {})
    data = data_path(engine, name)
    image_dir = Path(rootfs + dest_in_rootfs)
    if image_dir.is_dir() and not image_dir.is_symlink() and not any(data.iterdir()) and any(image_dir.iterdir()):
        _copy_up(image_dir, data)
    return str(data)


def _copy_up(src: Path, dst: Path) -> None:
    # cp -a keeps owners, modes, times, hard links, special files and xattrs; the volume's root
    # takes the attributes of the directory it is mounted over, as Docker's copy-up does
    try:
        subprocess.run(["cp", "-a", "--", f"{src}/.", f"{dst}/"], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        raise DockerMiniError(f"copying the image's {src.name or '/'} into volume "
                              f"{dst.parent.name}: {e.stderr.strip()}") from None


def remove(engine, name: str, force: bool = False) -> None:
    """Refused while any container uses it (force does not change that, as Docker)."""
    check_name(name)
    with engine.mutation():
        if not exists(engine, name):
            if force:
                return
            raise DockerMiniError(f"get {name}: no such volume")
        using = users(engine, name)
        if using:
            raise ConflictError(f"remove {name}: volume is in use - [{', '.join(r.id for r in using)}]")
        _delete(engine, name)


def _delete(engine, name: str) -> None:
    # the metadata goes first: a crash half-way leaves a directory no listing shows, never a
    # listed volume with half of its data
    _meta_path(engine, name).unlink(missing_ok=True)
    shutil.rmtree(volumes_dir(engine) / name, ignore_errors=False)


def prune(engine) -> tuple[list[str], int]:
    """Remove every volume no container uses; returns the names and the bytes reclaimed."""
    removed, space = [], 0
    with engine.mutation():
        used = in_use(engine)
        for meta in list_volumes(engine):
            name = meta["Name"]
            if name in used:
                continue
            space += _size(data_path(engine, name))
            _delete(engine, name)
            removed.append(name)
    return removed, space


def in_use(engine) -> set[str]:
    """The names of the volumes some container (any state) mounts."""
    return {n for r in _all(engine) for n in named_sources(r.options.volumes)}


def _all(engine):
    from reconciler.engine.containers.store import all_records

    return all_records(engine)


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def remove_stack_volumes(engine, names) -> list[tuple[str, str | None]]:
    """down -v: each of the stack's own volumes removed, or why it was kept."""
    out = []
    for name in names:
        try:
            if exists(engine, name):
                remove(engine, name)
                out.append((name, None))
        except DockerMiniError as e:
            out.append((name, e.message))
    return out
