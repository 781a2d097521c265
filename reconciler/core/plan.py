"""The plan: desired stack x observed state -> ordered actions, each with its reason. Pure.

Only containers labelled with the stack's name are ever touched; a container of another stack
(or of none) that holds a name the stack wants makes that create fail, it is never removed.

An action's kind is a `Kind`, its reason a small value (the exit code and restart policy of a
restart, the fields that changed for a recreate, ...): code decides on those fields; `cause`,
the text users read, is derived from them.

Actions carry the ids of the actions they need first (`deps`), so execute can run independent
ones side by side and skip the dependents of a failure:
  - create/recreate after the pull of their image and after every removal (which frees names,
    addresses and ports); start/recreate after the actions that make their depends_on run;
  - a dependent whose depends_on has a condition (service_healthy, service_completed_
    successfully) starts after a wait_healthy / wait_completed action on that dependency, planned
    only when the dependent is to be started, and after whatever makes the dependency run;
  - stop in reverse: a container is stopped after those that depend on it;
  - remove after its own stop; remove_image after every container removal and recreate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from reconciler.core.actions import (Absent, Action, Change, Changed, Dead, DependencyCondition, Down,  # noqa: F401
                                     ImageChanged,
                                     ImageMissing, Kind, KINDS, LimitsChanged, NewContainer, NotFound,
                                     NotInSpec, NotRunning, NoSpecHash, PolicyRestart, PullAlways,
                                     Reason, SpecChanged, UnknownHashVersion, WantedStopped,
                                     limits_change, short_size)
from reconciler.core.limits import Resources
from reconciler.core.restart import RestartPolicy, should_restart
from reconciler.core.spec import ServiceSpec, Stack, hash_version, spec_hash

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


# ---------------------------------------------------------------------------------------------


def plan(desired: Stack, observed: Observed, *, restart_policies: bool = False) -> list[Action]:
    """Actions that converge the host to `desired`.

    A container never started is started. An exited one: restart_policies=True (watch) starts
    it only as its restart policy says (no, on-failure[:N], always, unless-stopped) and not if
    it was stopped by hand; False (apply) starts it unless its policy leaves it stopped (see
    left_stopped: no, on-failure that exited 0, unless-stopped or on-failure stopped by hand),
    so plan and watch agree on what is converged.
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

    def add(self, kind: Kind, target: str, reason: Reason, deps=(), **details) -> Action:
        deps = tuple(d for d in dict.fromkeys(deps) if d in self.ids)
        action = Action(kind, target, reason, details, deps)
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
                self.add(Kind.PULL, img.ref, PullAlways())
            elif local is None and img.pull == "missing":
                self.add(Kind.PULL, img.ref, ImageMissing())

    def unwanted_images(self) -> None:
        after = [a.id for a in self.actions if a.kind in (Kind.REMOVE, Kind.RECREATE)]
        for img in self.desired.images:
            if img.state == "absent" and img.ref in self.observed.images:
                self.add(Kind.REMOVE_IMAGE, img.ref, Absent(), after)

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
            reason = Absent() if in_spec else NotInSpec()
            deps = ()
            if c.status in RUNNING:
                # a container still in the spec is stopped only after those that depend on it
                after = self.dependent_stops(spec.name) if in_spec else []
                stop = self.add(Kind.STOP, c.name, reason, after, id=c.id)
                deps = (stop.id,)
            self.removals.append(self.add(Kind.REMOVE, c.name, reason, deps, id=c.id).id)

    def service(self, spec: ServiceSpec, restart_policies: bool) -> None:
        c = self.observed.containers.get(spec.container_name)
        pull = f"{Kind.PULL}:{spec.image}"
        if c is None or c.stack != self.desired.name:
            create = self.add(Kind.CREATE, spec.container_name, NotFound(), [pull, *self.removals],
                              service=spec.name)
            if spec.state == "running":
                self.runs[spec.name] = self.add(Kind.START, spec.container_name, NewContainer(),
                                                [create.id, *self.needs(spec)], service=spec.name).id
            return

        changes = recreate_changes(spec, c, self.observed.images.get(spec.image))
        if changes:
            needs = (self.needs(spec) if spec.state == "running"
                     else [self.runs[d] for d in spec.depends_on if d in self.runs])
            action = self.add(Kind.RECREATE, spec.container_name, Changed(changes),
                              [pull, *self.removals, *needs], service=spec.name, id=c.id,
                              start=spec.state == "running")
            if spec.state == "running":
                self.runs[spec.name] = action.id
            return

        if c.resources is not None and c.resources != spec.resources:
            self.add(Kind.UPDATE_RESOURCES, spec.container_name, LimitsChanged(c.resources, spec.resources),
                     service=spec.name, id=c.id)

        if spec.state != "running" or c.status in RUNNING:
            return
        reason = start_reason(spec, c, restart_policies)
        if reason is not None:
            self.runs[spec.name] = self.add(Kind.START, spec.container_name, reason, self.needs(spec),
                                            service=spec.name, id=c.id).id

    def needs(self, spec: ServiceSpec) -> list[str]:
        """What a start of `spec` waits for: its dependencies' starts, and a wait action on each
        dependency with a condition (one per dependency, shared by its dependents)."""
        out = []
        for dep in spec.depends_on:
            cond = spec.condition(dep)
            dspec = self.desired.containers.get(dep)
            if cond == "service_started" or dspec is None:
                if dep in self.runs:
                    out.append(self.runs[dep])
                continue
            kind = Kind.WAIT_HEALTHY if cond == "service_healthy" else Kind.WAIT_COMPLETED
            aid = f"{kind}:{dspec.container_name}"
            if aid in self.ids:
                i = next(i for i, a in enumerate(self.actions) if a.id == aid)
                old = self.actions[i]
                self.actions[i] = Action(kind, old.target, DependencyCondition(
                    (*old.reason.dependents, spec.name), cond), old.details, old.deps)
            else:
                self.add(kind, dspec.container_name, DependencyCondition((spec.name,), cond),
                         [self.runs[dep]] if dep in self.runs else [], service=dep)
            out.append(aid)
        return out

    def stop_wanted(self, spec: ServiceSpec) -> None:
        c = self.observed.containers.get(spec.container_name)
        if c is None or c.stack != self.desired.name or c.status not in RUNNING:
            return
        self.add(Kind.STOP, spec.container_name, WantedStopped(), self.dependent_stops(spec.name),
                 service=spec.name, id=c.id)

    def dependent_stops(self, service: str) -> list[str]:
        """The ids of the stop actions of the services that depend on `service` (add() keeps
        those that were planned)."""
        return [f"{Kind.STOP}:{s.container_name}" for s in self.desired.containers.values()
                if service in s.depends_on]


def recreate_changes(spec: ServiceSpec, c: ObservedContainer, image_id: str | None) -> tuple[Change, ...]:
    if c.status == "dead":
        return (Dead(),)
    changes: list[Change] = []
    version = hash_version(c.spec_hash or "")
    if not c.spec_hash:
        changes.append(NoSpecHash())
    else:
        try:
            wanted = spec_hash(spec.hashed_fields(), version)
        except ValueError:
            changes.append(UnknownHashVersion(version))
        else:
            if wanted != c.spec_hash:
                changes.append(spec_change(c.spec, spec.hashed_fields()))
    # not present locally: a pull is planned first, and apply plans again after it
    if image_id is not None and c.image_digest != image_id:
        changes.append(ImageChanged(c.image_digest, image_id))
    return tuple(changes)


def spec_change(old: Mapping | None, new: Mapping) -> SpecChanged:
    if not isinstance(old, Mapping):
        return SpecChanged()
    return SpecChanged(tuple(sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))))


def left_stopped(policy: RestartPolicy, exit_code: int | None, manually_stopped: bool) -> bool:
    """Whether an exited container is where its policy leaves it: no (it ran), on-failure that
    exited 0 or was stopped by hand, unless-stopped stopped by hand."""
    if policy.name == "no":
        return True
    if policy.name == "on-failure":
        return exit_code == 0 or manually_stopped
    return policy.name == "unless-stopped" and manually_stopped


def start_reason(spec: ServiceSpec, c: ObservedContainer, restart_policies: bool) -> Reason | None:
    if c.status == "created":
        return NotRunning(c.status, c.exit_code)
    policy = RestartPolicy.parse(spec.restart)
    if not restart_policies:
        # apply: a container that its policy leaves stopped is converged (a one-shot job is
        # not run again by every apply; a change of its spec recreates it), as watch sees it.
        # `always` is the exception: apply starts it even after a stop by hand, as Docker's
        # daemon does when it starts
        if left_stopped(policy, c.exit_code, c.manually_stopped):
            return None
        return NotRunning(c.status, c.exit_code)
    # as Docker: a stop by hand holds until the next apply
    if not should_restart(policy, c.exit_code, c.restart_count, c.manually_stopped):
        return None
    return PolicyRestart(c.status, c.exit_code, policy, c.restart_count)
