"""A plan's actions: what to do (`Kind`), to what, and why (a reason: a small value whose
fields code decides on; `cause`, the text users read, is derived from it). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Mapping, Union

from reconciler.core.limits import Resources
from reconciler.core.restart import RestartPolicy

class Kind(StrEnum):
    PULL = "pull"
    STOP = "stop"
    REMOVE = "remove"
    CREATE = "create"
    RECREATE = "recreate"
    UPDATE_RESOURCES = "update_resources"
    START = "start"
    WAIT_HEALTHY = "wait_healthy"          # a dependency's condition, before its dependents start
    WAIT_COMPLETED = "wait_completed"
    REMOVE_IMAGE = "remove_image"


KINDS = tuple(Kind)


# --- reasons: why an action is planned ---------------------------------------------------------


def _exited(status: str, exit_code: int | None) -> str:
    return f"exited ({exit_code})" if exit_code is not None else status


@dataclass(frozen=True)
class PullAlways:
    def __str__(self) -> str:
        return "pull policy: always"


@dataclass(frozen=True)
class ImageMissing:
    def __str__(self) -> str:
        return "not present"


@dataclass(frozen=True)
class Absent:
    """The spec says state: absent (a container, an image)."""
    def __str__(self) -> str:
        return "state: absent"


@dataclass(frozen=True)
class NotInSpec:
    def __str__(self) -> str:
        return "not in spec"


@dataclass(frozen=True)
class Down:
    def __str__(self) -> str:
        return "down"


@dataclass(frozen=True)
class WantedStopped:
    def __str__(self) -> str:
        return "state: stopped"


@dataclass(frozen=True)
class NotFound:
    def __str__(self) -> str:
        return "not found"


@dataclass(frozen=True)
class NewContainer:
    def __str__(self) -> str:
        return "new container"


@dataclass(frozen=True)
class NotRunning:
    """apply starts every container that should run and does not (whatever its policy)."""
    status: str                        # created | exited | ...
    exit_code: int | None = None

    def __str__(self) -> str:
        if self.status == "created":
            return "not running"
        return f"not running: {_exited(self.status, self.exit_code)}"


@dataclass(frozen=True)
class PolicyRestart:
    """watch starts an exited container again because its restart policy says so."""
    status: str
    exit_code: int | None
    policy: RestartPolicy
    restart_count: int = 0

    def __str__(self) -> str:
        return f"{_exited(self.status, self.exit_code)}, restart policy {self.policy}"


@dataclass(frozen=True)
class DependencyCondition:
    """A dependent waits for this container (`service`) to meet its depends_on condition."""
    dependents: tuple[str, ...]
    condition: str                     # service_healthy | service_completed_successfully

    def __str__(self) -> str:
        return f"{', '.join(self.dependents)} depends on it: {self.condition}"


@dataclass(frozen=True)
class LimitsChanged:
    old: Resources
    new: Resources

    def __str__(self) -> str:
        return limits_change(self.old, self.new)


# what a recreate found different
@dataclass(frozen=True)
class Dead:
    def __str__(self) -> str:
        return "dead (left half-made or half-removed)"


@dataclass(frozen=True)
class NoSpecHash:
    def __str__(self) -> str:
        return "no spec hash label"


@dataclass(frozen=True)
class UnknownHashVersion:
    version: str

    def __str__(self) -> str:
        return f"spec hash version {self.version} unknown"


@dataclass(frozen=True)
class SpecChanged:
    fields: tuple[str, ...] = ()       # empty: the old spec is not known

    def __str__(self) -> str:
        return "spec changed: " + ", ".join(self.fields) if self.fields else "spec changed"


@dataclass(frozen=True)
class ImageChanged:
    old: str | None
    new: str

    def __str__(self) -> str:
        return "image digest changed"


Change = Union[Dead, NoSpecHash, UnknownHashVersion, SpecChanged, ImageChanged]


@dataclass(frozen=True)
class Changed:
    changes: tuple[Change, ...]

    def __str__(self) -> str:
        return "; ".join(str(c) for c in self.changes)


Reason = Union[PullAlways, ImageMissing, Absent, NotInSpec, Down, WantedStopped, NotFound,
               NewContainer, NotRunning, PolicyRestart, LimitsChanged, Changed, DependencyCondition]


# --- what the plan is made of ------------------------------------------------------------------



@dataclass(frozen=True)
class Action:
    kind: Kind
    target: str                          # container name, or image ref for pull/remove_image
    reason: Reason
    details: Mapping = field(default_factory=dict, compare=False, hash=False)
    deps: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "kind", Kind(self.kind))

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.target}"

    @property
    def cause(self) -> str:
        """What users read: derived from the reason."""
        return str(self.reason)

    def __str__(self) -> str:
        return f"{self.kind:<16} {self.target}  ({self.cause})"


# ---------------------------------------------------------------------------------------------
# describing limit changes


def short_size(n: int) -> str:
    for unit, factor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def _limit_values(r: Resources) -> dict[str, str]:
    return {
        "memory": short_size(r.memory) if r.memory else "unlimited",
        "memory_swap": ("unlimited" if r.memory_swap == -1 else
                        short_size(r.memory_swap) if r.memory_swap else "default"),
        "cpus": f"{r.nano_cpus / 1e9:g}" if r.nano_cpus else "unset",
        "cpu_period": str(r.cpu_period) if r.cpu_period else "unset",
        "cpu_quota": str(r.cpu_quota) if r.cpu_quota else "unset",
        "cpuset": r.cpuset_cpus or "any",
        "pids": str(r.pids_limit) if r.pids_limit is not None else "unlimited",
        "memory_reservation": short_size(r.memory_reservation) if r.memory_reservation else "unset",
    }


def limits_change(old: Resources, new: Resources) -> str:
    """'memory 64m -> 128m, pids 100 -> 200' (swap left out when it follows memory by default)."""
    a, b = _limit_values(old), _limit_values(new)
    derived_swap = old.memory_swap == 2 * old.memory and new.memory_swap == 2 * new.memory
    parts = [f"{k} {a[k]} -> {b[k]}" for k in a
             if a[k] != b[k] and not (k == "memory_swap" and derived_swap and a["memory"] != b["memory"])]
    return ", ".join(parts) or "limits changed"
