"""The container record, typed: what overlay-containers/<id>/container.json holds.

    {
      "format": 1,
      "id": "<64 hex>", "name": "web",          # the name without Docker's leading "/"
      "image": "busybox",                       # as the user gave it
      "image_id": "sha256:<hex>",               # rmi refuses images referenced here
      "image_digest": "sha256:<manifest>" | null, "image_layer": "<chain id>", "lowerdirs": [...],
      "created": "2026-11-28T09:00:00.123456789Z",
      "labels": {...},
      "options": {...},                         # CreateOptions.to_dict(): normalized user options
      "path": "/bin/sh", "args": ["-c", "..."], # the process run (image config + overrides)
      "config": {"Hostname", "User", "Env", "Cmd", "Entrypoint", "WorkingDir", "StopSignal", "Tty", "OpenStdin"},
      "network": {...},                         # NetworkEndpoint: what engine.network.prepare returned
      "log_inode": 123,                         # of the log create made (see logs)
      "state": {...}                            # RunState
    }

Records written before "format" existed (format 0) have the same fields, some missing: every
field has a default, and keys this code does not know are kept as they were (`extra`), so a
newer record read and saved by this code loses nothing. A later change of shape bumps FORMAT
and migrates in from_json.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.containers.options import CreateOptions

FORMAT = 1


@functools.cache
def _known(cls) -> frozenset[str]:
    # from_json asks once per record: `ps` reads every record
    return frozenset(f.name for f in dataclasses.fields(cls))


@dataclass
class RunState:
    """What docker-mini last did to the container's process (current_state() adds what it saw)."""
    status: str = "created"        # creating | created | running | exited | removing; observed: dead
    pid: int = 0
    pid_start: int | None = None   # the pid's start time, so a reused pid is not taken for it
    conmon_pid: int = 0            # the monitor's pid: conmon's, or the foreground CLI's
    monitor: str = "conmon"        # "conmon" | "cli" (a foreground run is its own monitor)
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = 0
    oom_killed: bool = False
    restart_count: int = 0
    error: str = ""
    manually_stopped: bool = False     # stop, or a kill that ended it: no policy restart
    restarting: bool = False           # restart() stops it: that exit is no --rm removal
    token: str | None = None           # names one run: a late exit command of an older one is ignored
    creator: list | None = None        # [pid, start time] of the create in progress

    @property
    def running(self) -> bool:
        return self.status == "running"

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if self.creator is None:
            del data["creator"]
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> RunState:
        data = data or {}
        known = _known(cls)
        state = cls(**{k: v for k, v in data.items() if k in known and v is not None})
        if "exit_code" in data and data["exit_code"] is None:
            state.exit_code = None
        state.monitor = state.monitor or "conmon"
        return state


@dataclass
class NetworkEndpoint:
    """The container's network lease as create recorded it (engine.network keeps the live copy)."""
    id: str = ""
    mode: str = "bridge"               # bridge | none | host | container:<id>
    name: str = ""
    hostname: str = ""
    aliases: list[str] = field(default_factory=list)
    stack: str = ""
    container: str | None = None       # mode container:, the joined container's id
    bridge: str | None = None
    subnet: str | None = None
    ip: str | None = None
    prefixlen: int | None = None
    gateway: str | None = None
    mac: str | None = None
    ports: list[dict] = field(default_factory=list)    # core.portmapping.PortMapping.to_dict()s
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra" and v is not None}
        return {**self.extra, **data} if self.id else dict(self.extra)

    @classmethod
    def from_json(cls, data: dict | None) -> NetworkEndpoint:
        data = data or {}
        known = _known(cls) - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known and v is not None},
                   extra={k: v for k, v in data.items() if k not in known})


@dataclass
class ProcessConfig:
    """The process the container runs, in the names of Docker's Config (inspect shows it)."""
    hostname: str = ""
    user: str = ""
    env: list[str] = field(default_factory=list)
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    working_dir: str = "/"
    stop_signal: str | None = None
    tty: bool = False
    open_stdin: bool = False

    _JSON = {"hostname": "Hostname", "user": "User", "env": "Env", "cmd": "Cmd",
             "entrypoint": "Entrypoint", "working_dir": "WorkingDir", "stop_signal": "StopSignal",
             "tty": "Tty", "open_stdin": "OpenStdin"}

    def to_json(self) -> dict:
        return {key: getattr(self, name) for name, key in self._JSON.items()}

    @classmethod
    def from_json(cls, data: dict | None) -> ProcessConfig:
        data = data or {}
        values = {name: data[key] for name, key in cls._JSON.items() if data.get(key) is not None}
        return cls(**values)


@dataclass
class ContainerRecord:
    id: str
    name: str = ""
    image: str = ""
    image_id: str = ""
    image_digest: str | None = None
    image_layer: str | None = None
    lowerdirs: list[str] = field(default_factory=list)
    created: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    options: CreateOptions = field(default_factory=lambda: CreateOptions(image=""))
    path: str = ""
    args: list[str] = field(default_factory=list)
    config: ProcessConfig = field(default_factory=ProcessConfig)
    network: NetworkEndpoint = field(default_factory=NetworkEndpoint)
    log_inode: int | None = None
    state: RunState = field(default_factory=RunState)
    extra: dict = field(default_factory=dict)      # keys of a newer format, kept as they were

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def command(self) -> list[str]:
        return [self.path, *self.args]

    def to_json(self) -> dict:
        return {
            **self.extra,
            "format": max(FORMAT, self.extra.get("format", FORMAT)),
            "id": self.id, "name": self.name, "image": self.image, "image_id": self.image_id,
            "image_digest": self.image_digest, "image_layer": self.image_layer,
            "lowerdirs": list(self.lowerdirs), "created": self.created, "labels": dict(self.labels),
            "options": self.options.to_dict(), "path": self.path, "args": list(self.args),
            "config": self.config.to_json(), "network": self.network.to_json(),
            "log_inode": self.log_inode, "state": self.state.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict) -> ContainerRecord:
        """A record of any format so far (0: before "format" was written). ValueError if `data`
        is no container record at all."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ValueError("not a container record (no id)")
        known = _known(cls)
        if data.get("format", 0) <= FORMAT:
            known |= {"format"}           # a newer format's number is kept with its fields
        options: Any = data.get("options") or {}
        return cls(
            id=data["id"], name=data.get("name") or "", image=data.get("image") or "",
            image_id=data.get("image_id") or "", image_digest=data.get("image_digest"),
            image_layer=data.get("image_layer"), lowerdirs=list(data.get("lowerdirs") or []),
            created=data.get("created") or "", labels=dict(data.get("labels") or {}),
            options=CreateOptions.from_dict({"image": data.get("image") or "", **options}),
            path=data.get("path") or "", args=list(data.get("args") or []),
            config=ProcessConfig.from_json(data.get("config")),
            network=NetworkEndpoint.from_json(data.get("network")),
            log_inode=data.get("log_inode"), state=RunState.from_json(data.get("state")),
            extra={k: v for k, v in data.items() if k not in known})
