"""The stack model a spec normalizes to, and the hash that tells when a container must be
recreated."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from reconciler.core.limits import Resources

HASH_VERSION = "v1"

@dataclass(frozen=True)
class ImageSpec:
    ref: str
    state: str = "present"          # present | absent
    pull: str = "missing"           # missing | always | never


CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


@dataclass(frozen=True)
class HealthcheckSpec:
    """A spec's healthcheck (durations in seconds; None: the image's value, else Docker's
    default). test: a string (run by /bin/sh -c) or [CMD, ...] / [CMD-SHELL, cmd] / [NONE]."""
    test: str | tuple[str, ...] | None = None
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    disable: bool = False

    def to_dict(self) -> dict:
        """The fields set (core.health.merge takes this; the spec hash includes it)."""
        d = {"test": list(self.test) if isinstance(self.test, tuple) else self.test,
             "interval": self.interval, "timeout": self.timeout, "retries": self.retries,
             "start_period": self.start_period, "disable": self.disable or None}
        return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    container_name: str
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()                     # "K=V", env_file first, env overriding
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    resources: Resources = field(default_factory=Resources)   # applied in place: not hashed
    disk: int | None = None
    ip: str | None = None
    mac: str | None = None
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()                 # "/host:/ctr[:ro]" or "VOLUME:/ctr[:ro]" (full name)
    tmpfs: tuple[str, ...] = ()                   # "/path[:size=64m,mode=1777]"
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    ulimits: tuple[str, ...] = ()                 # "nofile=1024:2048"
    network: str = "bridge"
    restart: str = "no"                           # enforced by the container's monitor: hashed
    depends_on: tuple[str, ...] = ()              # services, including a container:NAME network peer
    conditions: tuple[tuple[str, str], ...] = ()  # (service, condition) where not service_started
    healthcheck: HealthcheckSpec | None = None
    stop_signal: str | None = None
    stop_grace_period: int | None = None          # seconds
    labels: tuple[tuple[str, str], ...] = ()
    state: str = "running"                        # running | stopped | absent

    def hashed_fields(self) -> dict:
        """The fields whose change needs a new container, canonical (empty values left out, so a
        field added in a later version does not change the hash of specs that do not use it)."""
        d = {
            "image": self.image,
            "command": list(self.command) if self.command is not None else None,
            "entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
            "env": list(self.env),
            "working_dir": self.working_dir,
            "user": self.user,
            "hostname": self.hostname,
            "disk": self.disk,
            "ip": self.ip,
            "mac": self.mac,
            "ports": list(self.ports),
            "volumes": list(self.volumes),
            "network": None if self.network == "bridge" else self.network,
            "stop_signal": self.stop_signal,
            "stop_grace_period": self.stop_grace_period,
            "labels": dict(self.labels),
            "tmpfs": list(self.tmpfs),
            "read_only": self.read_only or None,
            "cap_add": list(self.cap_add),
            "cap_drop": list(self.cap_drop),
            "ulimits": list(self.ulimits),
            "healthcheck": self.healthcheck.to_dict() if self.healthcheck else None,
            "restart": None if self.restart == "no" else self.restart,
        }
        return {k: v for k, v in d.items() if v not in (None, [], {})}

    def create_extras(self) -> dict:
        """CreateOptions fields beyond those execute.create_options names one by one."""
        return {"tmpfs": list(self.tmpfs), "read_only": self.read_only, "cap_add": list(self.cap_add),
                "cap_drop": list(self.cap_drop), "ulimits": list(self.ulimits)}

    def condition(self, dependency: str) -> str:
        """What this service waits for of a dependency before it starts."""
        return dict(self.conditions).get(dependency, "service_started")

    @property
    def spec_hash(self) -> str:
        return spec_hash(self.hashed_fields())


@dataclass(frozen=True)
class Stack:
    name: str
    images: tuple[ImageSpec, ...]                 # explicit entries and every container's image
    containers: dict[str, ServiceSpec]            # in a dependency order (dependencies first)
    files: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()                 # the stack's own named volumes (down -v removes them)

    def image_spec(self, ref: str) -> ImageSpec:
        for img in self.images:
            if img.ref == ref:
                return img
        return ImageSpec(ref)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(hashed: Mapping, version: str = HASH_VERSION) -> str:
    """Versioned hash: a later version keeps this function to compare old containers without
    recreating them all."""
    if version != "v1":
        raise ValueError(f"unknown spec hash version {version!r}")
    return "v1:" + hashlib.sha256(canonical_json(dict(hashed)).encode()).hexdigest()


def hash_version(value: str) -> str | None:
    return value.split(":", 1)[0] if value and ":" in value else None
