"""The plan: desired stack x observed state -> ordered actions, each with its cause. Pure.

Only containers labelled with the stack's name are ever touched; a container of another stack
(or of none) that holds a name the stack wants makes that create fail, it is never removed.

Actions carry the ids of the actions they need first (`deps`), so execute can run independent
ones side by side and skip the dependents of a failure:
  - create/recreate after the pull of their image and after every removal (which frees names,
    addresses and ports); start/recreate after the actions that make their depends_on run;
  - stop in reverse: a container is stopped after those that depend on it;
  - remove after its own stop; remove_image after every container removal and recreate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from reconciler.core.limits import Resources
from reconciler.core.spec import ServiceSpec, Stack, hash_version, spec_hash

KINDS = ("pull", "stop", "remove", "create", "recreate", "update_resources", "start", "remove_image")
RUNNING = ("running", "paused", "restarting")


@dataclass(frozen=True)
class ObservedContainer:
    name: str
    id: str = ""
    stack: str | None = None             # labels, as found on the container
    service: str | None = None
    spec_hash: str | None = None
    spec: Mapping | None = None          # the hashed fields it was created from (label), if readable
    image_digest: str | None = None
    status: str = "running"              # created | running | exited | paused | dead (broken)
    exit_code: int | None = None
    resources: Resources | None = None   # limits applied now (None: unknown, not compared)
    restart_count: int = 0               # restarts by the watcher since the last clean run
    manually_stopped: bool = False       # stopped by `docker-mini stop`: no policy restarts


@dataclass(frozen=True)
class Observed:
    images: Mapping[str, str] = field(default_factory=dict)   # image ref as in the spec -> local image id
    containers: Mapping[str, ObservedContainer] = field(default_factory=dict)   # by name


@dataclass(frozen=True)
class Action:
    kind: str
    target: str                          # container name, or image ref for pull/remove_image
    cause: str
    details: Mapping = field(default_factory=dict, compare=False, hash=False)
    deps: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.target}"

    def __str__(self) -> str:
        return f"{self.kind:<16} {self.target}  ({self.cause})"


# ---------------------------------------------------------------------------------------------


def plan(desired: Stack, observed: Observed, *, restart_policies: bool = False) -> list[Action]:
    """Actions that converge the host to `desired`.

    restart_policies=False (apply): every container whose state is running and that is not
    running is started. True (watch): an exited container is started only as its restart
    policy says (no, on-failure[:N], always, unless-stopped) and not if it was stopped by hand;
    one never started is started.
    """
    p = _Planner(desired, observed)
    p.images()
    p.unwanted_containers()
    for spec in desired.containers.values():
        if spec.state != "absent":
            p.service(spec, restart_policies)
    for spec in reversed(list(desired.containers.values())):
        if spec.state == "stopped":
            p.stop_wanted(spec)
    p.unwanted_images()
    return p.actions


class _Planner:
    def __init__(self, desired: Stack, observed: Observed):
        self.desired = desired
        self.observed = observed
        self.actions: list[Action] = []
        self.ids: set[str] = set()
        self.ours = {n: c for n, c in observed.containers.items() if c.stack == desired.name}
        self.removals: list[str] = []
        self.runs: dict[str, str] = {}      # service -> id of the action that makes it run

    def add(self, kind: str, target: str, cause: str, deps=(), **details) -> Action:
        deps = tuple(d for d in dict.fromkeys(deps) if d in self.ids)
        action = Action(kind, target, cause, details, deps)
        self.actions.append(action)
        self.ids.add(action.id)
        return action

    # images ------------------------------------------------------------------------------

    def images(self) -> None:
        for img in self.desired.images:
            if img.state != "present":
                continue
            local = self.observed.images.get(img.ref)
            if img.pull == "always":
                self.add("pull", img.ref, "pull policy: always")
            elif local is None and img.pull == "missing":
                self.add("pull", img.ref, "not present")

    def unwanted_images(self) -> None:
        after = [a.id for a in self.actions if a.kind in ("remove", "recreate")]
        for img in self.desired.images:
            if img.state == "absent" and img.ref in self.observed.images:
                self.add("remove_image", img.ref, "state: absent", after)

    # containers --------------------------------------------------------------------------

    def unwanted_containers(self) -> None:
        wanted = {s.container_name: s for s in self.desired.containers.values() if s.state != "absent"}
        # reverse creation order is unknown for containers no longer in the spec; those still
        # in it (state: absent) are stopped dependents first
        order = {s.container_name: i for i, s in enumerate(self.desired.containers.values())}
        doomed = [c for n, c in self.ours.items() if n not in wanted]
        doomed.sort(key=lambda c: -order.get(c.name, len(order)))
        for c in doomed:
            spec = self.desired.containers.get(c.service or "")
            in_spec = spec is not None and spec.container_name == c.name
            cause = "state: absent" if in_spec else "not in spec"
            deps = ()
            if c.status in RUNNING:
                # a container still in the spec is stopped only after those that depend on it
                after = self.dependent_stops(spec.name) if in_spec else []
                stop = self.add("stop", c.name, cause, after, id=c.id)
                deps = (stop.id,)
            self.removals.append(self.add("remove", c.name, cause, deps, id=c.id).id)

    def service(self, spec: ServiceSpec, restart_policies: bool) -> None:
        c = self.observed.containers.get(spec.container_name)
        pull = f"pull:{spec.image}"
        needs = [self.runs[d] for d in spec.depends_on if d in self.runs]
        if c is None or c.stack != self.desired.name:
            create = self.add("create", spec.container_name, "not found", [pull, *self.removals],
                              service=spec.name)
            if spec.state == "running":
                self.runs[spec.name] = self.add("start", spec.container_name, "new container",
                                                [create.id, *needs], service=spec.name).id
            return

        reasons = _recreate_reasons(spec, c, self.observed.images.get(spec.image))
        if reasons:
            action = self.add("recreate", spec.container_name, "; ".join(reasons),
                              [pull, *self.removals, *needs], service=spec.name, id=c.id,
                              start=spec.state == "running")
            if spec.state == "running":
                self.runs[spec.name] = action.id
            return

        if c.resources is not None and c.resources != spec.resources:
            self.add("update_resources", spec.container_name, limits_change(c.resources, spec.resources),
                     service=spec.name, id=c.id)

        if spec.state != "running" or c.status in RUNNING:
            return
        cause = _start_cause(spec, c, restart_policies)
        if cause:
            self.runs[spec.name] = self.add("start", spec.container_name, cause, needs,
                                            service=spec.name, id=c.id).id

    def stop_wanted(self, spec: ServiceSpec) -> None:
        c = self.observed.containers.get(spec.container_name)
        if c is None or c.stack != self.desired.name or c.status not in RUNNING:
            return
        self.add("stop", spec.container_name, "state: stopped", self.dependent_stops(spec.name),
                 service=spec.name, id=c.id)

    def dependent_stops(self, service: str) -> list[str]:
        """The ids of the stop actions of the services that depend on `service` (add() keeps
        those that were planned)."""
        return [f"stop:{s.container_name}" for s in self.desired.containers.values()
                if service in s.depends_on]


def _recreate_reasons(spec: ServiceSpec, c: ObservedContainer, image_id: str | None) -> list[str]:
    if c.status == "dead":
        return ["dead (left half-made or half-removed)"]
    reasons = []
    version = hash_version(c.spec_hash or "")
    if not c.spec_hash:
        reasons.append("no spec hash label")
    else:
        try:
            wanted = spec_hash(spec.hashed_fields(), version)
        except ValueError:
            reasons.append(f"spec hash version {version} unknown")
        else:
            if wanted != c.spec_hash:
                reasons.append(spec_change(c.spec, spec.hashed_fields()))
    # not present locally: a pull is planned first, and apply plans again after it
    if image_id is not None and c.image_digest != image_id:
        reasons.append("image digest changed")
    return reasons


def spec_change(old: Mapping | None, new: Mapping) -> str:
    if not isinstance(old, Mapping):
        return "spec changed"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "spec changed: " + ", ".join(keys) if keys else "spec changed"


def _start_cause(spec: ServiceSpec, c: ObservedContainer, restart_policies: bool) -> str | None:
    if c.status == "created":
        return "not running"
    exited = f"exited ({c.exit_code})" if c.exit_code is not None else c.status
    if not restart_policies:
        return f"not running: {exited}"
    if c.manually_stopped:
        return None                      # as Docker: a stop by hand holds until the next apply
    policy, _, limit = spec.restart.partition(":")
    if policy in ("always", "unless-stopped"):
        return f"{exited}, restart policy {spec.restart}"
    if policy == "on-failure" and c.exit_code not in (0, None):
        if limit and c.restart_count >= int(limit):
            return None
        return f"{exited}, restart policy {spec.restart}"
    return None


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
