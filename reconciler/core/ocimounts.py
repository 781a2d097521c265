"""Mounts of the OCI config: -v/--mount/--tmpfs parsing, resolving destinations inside the rootfs,
Docker's default mounts and the engine's resolved mount plan. Pure.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.core.errors import InvalidArgument

@dataclass(frozen=True)
class Volume:
    source: str             # absolute host path ("" for a named volume until the engine resolves it)
    destination: str        # absolute container path (normalized, not yet resolved)
    read_only: bool = False
    name: str | None = None  # a named volume (<root>/volumes/NAME/_data), else a bind mount


def parse_volume(spec: str) -> Volume:
    """-v /host:/ctr[:ro|rw] (a bind mount) or -v NAME:/ctr[:ro|rw] (a named volume)"""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume {spec!r}: expected /host/path:/container/path[:ro] "
                              f"or NAME:/container/path[:ro]")
    source, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    name = None
    if not source.startswith("/"):
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", source):
            raise InvalidArgument(f'invalid volume {spec!r}: "{source}" includes invalid characters for a '
                                  f'local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. '
                                  f'If you intended to pass a host directory, use absolute path')
        name, source = source, ""
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid volume {spec!r}: the destination must be an absolute path")
    flags = set(mode.split(",")) - {"z", "Z"}
    if not flags <= {"ro", "rw"} or flags == {"ro", "rw"}:
        raise InvalidArgument(f"invalid volume {spec!r}: mode must be ro or rw")
    dest = posixpath.normpath(dest)
    if dest == "/":
        raise InvalidArgument(f"invalid volume {spec!r}: cannot mount over /")
    return Volume(posixpath.normpath(source) if source else "", dest, "ro" in flags, name)


def parse_mount(text: str) -> tuple[str, str]:
    """--mount type=volume|bind|tmpfs,source=...,target=...[,readonly][,tmpfs-size=..][,tmpfs-mode=..]
    as ("volume" | "bind", "SOURCE:/ctr[:ro]") or ("tmpfs", "/ctr[:size=..,mode=..]")."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.strip().partition("=")
        key = key.lower()
        if not key:
            continue
        if key in ("readonly", "ro") and not eq:
            value = "true"
        elif not eq:
            raise InvalidArgument(f"invalid --mount {text!r}: invalid field {key!r} must be a key=value pair")
        fields[{"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}.get(key, key)] = value
    kind = fields.pop("type", "volume")
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidArgument(f"invalid --mount {text!r}: type {kind!r} is not supported (volume, bind, tmpfs)")
    target = fields.pop("target", "")
    if not target:
        raise InvalidArgument(f"invalid --mount {text!r}: target is required")
    readonly = fields.pop("readonly", "false").lower()
    if readonly not in ("true", "1", "false", "0"):
        raise InvalidArgument(f"invalid --mount {text!r}: readonly={readonly} is not true or false")
    source = fields.pop("source", "")
    if kind == "tmpfs":
        if source:
            raise InvalidArgument(f"invalid --mount {text!r}: a tmpfs takes no source")
        opts = []
        if "tmpfs-size" in fields:
            opts.append(f"size={fields.pop('tmpfs-size')}")
        if "tmpfs-mode" in fields:
            opts.append(f"mode={fields.pop('tmpfs-mode')}")
        spec = target + (":" + ",".join(opts) if opts else "")
    else:
        if not source:
            raise InvalidArgument(f"invalid --mount {text!r}: anonymous volumes are not supported: "
                                  "give a source (a volume name or, with type=bind, a host path)")
        if kind == "bind" and not source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {text!r}: a bind source must be an absolute path")
        if kind == "volume" and source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {text!r}: a volume source is a volume name (type=bind for a path)")
        spec = f"{source}:{target}" + (":ro" if readonly in ("true", "1") else "")
    if fields:
        raise InvalidArgument(f"invalid --mount {text!r}: {', '.join(sorted(fields))} not supported")
    return ("tmpfs" if kind == "tmpfs" else "volume"), spec


@dataclass(frozen=True)
class Tmpfs:
    destination: str
    options: tuple[str, ...] = ()


def parse_tmpfs(spec: str) -> Tmpfs:
    """--tmpfs /path[:size=64m,mode=1777,...]"""
    dest, _, opts = spec.partition(":")
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid --tmpfs {spec!r}: the path must be absolute")
    dest = posixpath.normpath(dest)
    if dest == "/":
        raise InvalidArgument(f"invalid --tmpfs {spec!r}: cannot mount over /")
    options = tuple(o.strip() for o in opts.split(",") if o.strip()) if opts else ()
    for o in options:
        if not re.fullmatch(r"[a-z_]+(=[\w.%]+)?", o):
            raise InvalidArgument(f"invalid --tmpfs {spec!r}: bad option {o!r}")
    return Tmpfs(dest, options)


def resolve_in_rootfs(path: str, readlink: Callable[[str], str | None], max_links: int = 40) -> str:
    """The path a destination really names inside the rootfs, never outside it.

    Walks component by component; a symlink's target is followed with absolute targets taken
    relative to the rootfs and '..' clamped at its top. readlink(p) returns the target of the
    rootfs-relative absolute path p, or None when p is not a symlink (or does not exist).
    """
    pending = [c for c in path.split("/") if c not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        comp = pending.pop(0)
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = "/" + "/".join([*resolved, comp])
        target = readlink(candidate)
        if target is None:
            resolved.append(comp)
            continue
        links += 1
        if links > max_links:
            raise InvalidArgument(f"too many levels of symbolic links resolving {path!r} in the container")
        if target.startswith("/"):
            resolved = []
        pending = [c for c in target.split("/") if c not in ("", ".")] + pending
    return "/" + "/".join(resolved)


def default_mounts(cgroup_v2: bool) -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


@dataclass
class MountPlan:
    """Mounts whose destinations were already resolved inside the rootfs by the engine."""
    volumes: list[tuple[Volume, str]] = field(default_factory=list)    # (volume, resolved dest)
    tmpfs: list[tuple[Tmpfs, str]] = field(default_factory=list)
    etc_files: dict[str, str] = field(default_factory=dict)            # "/etc/hosts" -> host file
