"""What create/run is asked for (CreateOptions), its validation, and generated names."""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.errors import InvalidArgument
from reconciler.core.restart import RestartPolicy


@dataclass
class CreateOptions:
    """What create/run was asked for, normalized; kept in the record as "options" (to_dict)."""
    image: str
    name: str | None = None
    command: list[str] | None = None      # None: the image's Cmd
    entrypoint: list[str] | None = None   # None: the image's; [] (--entrypoint "") clears it
    env: list[str] = field(default_factory=list)     # "K=V" (or "K": taken from os.environ)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None           # None: the short id
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)   # "no-new-privileges", "seccomp=unconfined"
    ulimits: list[str] = field(default_factory=list)        # "nofile=1024:2048"
    resources: Any = None                 # core.limits.Resources | None (no limits)
    storage_size: int | None = None       # bytes (--storage-opt size=)
    volumes: list[str] = field(default_factory=list)        # "/host:/ctr[:ro]"
    tmpfs: list[str] = field(default_factory=list)          # "/path[:opts]"
    network: str = "bridge"               # "bridge" | "none" | "host" | "container:NAME" | a network's name
    networks: list[str] = field(default_factory=list)       # further networks (eth1...), as `network connect`
    network_aliases: list[str] = field(default_factory=list)   # more names on the first network
    add_hosts: list[str] = field(default_factory=list)      # --add-host HOST:IP, appended to /etc/hosts
    dns: list[str] = field(default_factory=list)            # --dns: resolv.conf's nameservers
    dns_search: list[str] = field(default_factory=list)     # --dns-search: its search domains
    ip: str | None = None
    mac: str | None = None
    ports: list[str] = field(default_factory=list)          # Docker's -p syntax
    publish_all: bool = False             # -P: the image's exposed ports too, on host ports picked
    labels: dict[str, str] = field(default_factory=dict)
    restart: str | None = "no"            # no | on-failure[:N] | always | unless-stopped
    stop_signal: str | None = None        # None: the image's StopSignal or SIGTERM
    stop_timeout: int | None = None       # None: 10 s
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["resources"] = self.resources.to_dict() if self.resources is not None else None
        for key in ("networks", "network_aliases", "add_hosts", "dns", "dns_search", "publish_all"):   # newer: when used
            if not d[key]:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CreateOptions:
        known = _field_names(cls)
        opts = cls(**{k: v for k, v in d.items() if k in known and k != "resources"})
        if d.get("resources"):
            from reconciler.core.limits import Resources
            opts.resources = Resources.from_dict(d["resources"])
        return opts


@functools.cache
def _field_names(cls) -> frozenset[str]:
    # from_dict runs once per record read: `ps` reads every record
    return frozenset(f.name for f in dataclasses.fields(cls))


_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def normalize(opts: CreateOptions) -> CreateOptions:
    """Validate every option before anything is created; returns a normalized copy."""
    from reconciler.core import ocilimits
    from reconciler.core import ocimounts
    from reconciler.core import ociprocess
    from reconciler.core import ocisecurity
    o = CreateOptions.from_dict(opts.to_dict())
    o.resources = opts.resources
    if o.name is not None:
        o.name = o.name.lstrip("/")
        if not _NAME.fullmatch(o.name):
            raise InvalidArgument(f"Invalid container name ({o.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    env = []
    for item in o.env:
        if "=" in item:
            env.append(item)
        elif item and item in os.environ:
            env.append(f"{item}={os.environ[item]}")
    o.env = env
    ocisecurity.effective_capabilities(o.cap_add, o.cap_drop)
    ocisecurity.parse_security_opts(o.security_opt)
    for u in o.ulimits:
        ocilimits.parse_ulimit(u)
    for v in o.volumes:
        ocimounts.parse_volume(v)
    for t in o.tmpfs:
        ocimounts.parse_tmpfs(t)
    if o.stop_signal:
        ociprocess.parse_signal(o.stop_signal)
    if o.stop_timeout is not None and o.stop_timeout < -1:
        raise InvalidArgument(f"invalid --stop-timeout {o.stop_timeout}")
    RestartPolicy.parse(o.restart)
    if o.hostname is None and o.network == "host":
        host = os.uname().nodename          # Docker and Podman: on the host's network, the host's name
        if ociprocess.is_hostname(host):
            o.hostname = host
    if o.auto_remove and o.restart not in ("no", "", None):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    o.restart = o.restart or "no"
    return o


_ADJECTIVES = ("brave", "calm", "clever", "eager", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nimble", "quiet", "quick", "sharp", "steady", "sunny", "tender", "vivid",
               "witty", "zealous", "bold", "bright", "cosmic", "dazzling", "fervent", "gallant")
_NAMES = ("babbage", "bohr", "curie", "darwin", "dijkstra", "euler", "faraday", "fermi", "gauss",
          "hopper", "hypatia", "kepler", "knuth", "lamarr", "lovelace", "maxwell", "meitner",
          "newton", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak")


def generate_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}"
        if name not in taken:
            return name
    while True:
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}{1 + random.randrange(9999)}"
        if name not in taken:
            return name
