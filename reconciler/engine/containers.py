"""Container lifecycle: create, start, stop, kill, restart, remove, wait, list, inspect, update.

Composes the image store, the rw layer (overlay), networking, the OCI config builder and the
runtime (runc + conmon). Every change of state happens under engine.mutation().

The record: overlay-containers/<id>/container.json (written atomically, last at create):

    {
      "id": "<64 hex>",
      "name": "web",                          # without Docker's leading "/"
      "image": "busybox",                     # as the user gave it
      "image_ref": "docker.io/library/busybox:latest",   # canonical, when parseable
      "image_id": "sha256:<hex>",             # rmi refuses images referenced here
      "image_digest": "sha256:<manifest>" | null,
      "created": "2026-11-28T09:00:00.123456789Z",
      "labels": {...},
      "options": {...},                       # CreateOptions.to_dict(): normalized user options
      "path": "/bin/sh", "args": ["-c", "..."],   # the process actually run (image config + overrides)
      "config": {"Hostname", "User", "Env", "Cmd", "Entrypoint", "WorkingDir", "StopSignal", ...},
      "network": {...},                       # what engine.network.prepare returned (lease, ports)
      "state": {
        "status": "creating" | "created" | "running" | "exited" | "removing",
        "pid": 0, "started_at": "...", "finished_at": "...", "exit_code": 0,
        "oom_killed": false, "restart_count": 0, "error": ""
      }
    }

The status on disk is what docker-mini last did; the observed status (list/inspect) also reads
runc's state, conmon's exit file and the pid: a container that died alone or was killed from
outside shows as exited with its real code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Lazy imports throughout: `ps` must not pay for image pulls, networking or the config builder.


@dataclass
class CreateOptions:
    image: str
    name: str | None = None
    command: list[str] | None = None          # None: the image's Cmd
    entrypoint: list[str] | None = None       # None: the image's; [] (--entrypoint "") clears it
    env: list[str] = field(default_factory=list)          # "K=V" (or "K" taken from the caller's env)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None               # None: the short id
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)  # "no-new-privileges", "seccomp=unconfined"
    ulimits: list[str] = field(default_factory=list)       # "nofile=1024:2048"
    resources: Any = None                     # core.limits.Resources | None (no limits)
    storage_size: int | None = None          # bytes (--storage-opt size=)
    volumes: list[str] = field(default_factory=list)       # "/host:/ctr[:ro]"
    tmpfs: list[str] = field(default_factory=list)         # "/path[:opts]"
    network: str = "bridge"                   # "bridge" | "none" | "host" | "container:NAME"
    ip: str | None = None
    mac: str | None = None
    ports: list[str] = field(default_factory=list)         # Docker's -p syntax
    labels: dict[str, str] = field(default_factory=dict)
    restart: str = "no"                       # no | on-failure[:N] | always | unless-stopped
    stop_signal: str | None = None            # None: the image's StopSignal or SIGTERM
    stop_timeout: int | None = None           # None: 10 s
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "resources"}
        res = self.resources
        d["resources"] = asdict(res) if res is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CreateOptions":
        known = {f.name for f in fields(cls)}
        opts = cls(**{k: v for k, v in d.items() if k in known and k != "resources"})
        if d.get("resources"):
            from reconciler.core.limits import Resources
            rknown = {f.name for f in fields(Resources)}
            opts.resources = Resources(**{k: v for k, v in d["resources"].items() if k in rknown})
        return opts


@dataclass
class ContainerState:
    """One row of `ps`: the record plus the observed status."""
    id: str
    name: str
    image: str
    image_id: str
    command: str                 # Docker's COMMAND column source: path + args joined
    created: str                 # RFC 3339
    status: str                  # created | running | exited | removing | dead
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    pid: int
    labels: dict
    ports: list                  # from the network record, for the PORTS column
    record: dict = field(repr=False, default_factory=dict)


def create(engine, opts: CreateOptions) -> dict:
    """Create a container; returns its record (container.json's content)."""
    raise NotImplementedError


def start(engine, name_or_id: str) -> dict:
    raise NotImplementedError


def stop(engine, name_or_id: str, timeout: int | None = None) -> dict:
    raise NotImplementedError


def kill(engine, name_or_id: str, signal: str = "KILL") -> None:
    raise NotImplementedError


def restart(engine, name_or_id: str, timeout: int | None = None) -> dict:
    raise NotImplementedError


def remove(engine, name_or_id: str, force: bool = False) -> None:
    raise NotImplementedError


def wait(engine, name_or_id: str) -> int:
    raise NotImplementedError


def list_containers(engine, all: bool = True) -> list[ContainerState]:
    raise NotImplementedError


def inspect_container(engine, name_or_id: str) -> dict:
    raise NotImplementedError


def update_resources(engine, name_or_id: str, resources) -> None:
    raise NotImplementedError


def resolve(engine, name_or_id: str) -> dict:
    """The record of the container named or identified (full id, unique id prefix, or name)."""
    raise NotImplementedError
