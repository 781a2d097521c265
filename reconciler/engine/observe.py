"""Observe the actual state a stack's plan is made against: the local images its spec names and
every container (the planner itself keeps to this stack's), with labels, status and limits."""

from __future__ import annotations

import dataclasses

from reconciler.engine.backoff import is_restarting  # noqa: F401  (ps: a held restart shows as Restarting)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from reconciler.core.plan import Observed, ObservedContainer
    from reconciler.core.spec import Stack

# core.spec and core.plan (yaml, dataclasses, ~40 ms) are imported by the functions that plan:
# `ps` imports this module only for is_restarting (engine.backoff's).

# container.json statuses that mean a create or a remove was cut short (kill -9): the planner
# recreates such a container.
BROKEN = {"creating", "removing", "dead"}


def local_image_id(engine, ref: str) -> str | None:
    from reconciler.core.errors import ImageNotFound
    try:
        return engine.images.resolve(ref).id
    except (ImageNotFound, KeyError, FileNotFoundError):
        return None


def observe_images(engine, stack: Stack) -> dict[str, str]:
    found = {}
    for img in stack.images:
        image_id = local_image_id(engine, img.ref)
        if image_id:
            found[img.ref] = image_id
    return found


def observed_container(state, restart_counts: dict | None = None) -> ObservedContainer:
    import json
    from reconciler.core.limits import Resources
    from reconciler.core.plan import ObservedContainer
    from reconciler.core import labels as label
    labels = state.labels or {}
    record = state.record or {}
    spec = None
    try:
        spec = json.loads(labels[label.SPEC]) if label.SPEC in labels else None
    except ValueError:
        pass
    resources = None
    options = record.options.to_dict()
    if "resources" in options:
        resources = Resources.from_dict(options.get("resources") or {})
    status = "dead" if state.status in BROKEN else state.status
    restarts = (restart_counts or {}).get(state.id)
    if restarts is None:
        restarts = record.state.restart_count
    return ObservedContainer(
        name=state.name, id=state.id, stack=labels.get(label.STACK), service=labels.get(label.SERVICE),
        spec_hash=labels.get(label.SPEC_HASH), spec=spec,
        image_digest=labels.get(label.IMAGE_DIGEST) or record.image_id,
        status=status, exit_code=state.exit_code, resources=resources, restart_count=restarts,
        manually_stopped=record.state.manually_stopped)


def observe(engine, stack: Stack, restart_counts: dict | None = None) -> Observed:
    """restart_counts: container id -> restarts by the watcher (its backoff state)."""
    from reconciler.core.plan import Observed
    from reconciler.core.labels import STACK
    from reconciler.engine import containers

    wanted = {s.container_name for s in stack.containers.values()}
    found = {}
    for state in containers.list_containers(engine, all=True):
        labels = state.labels or {}
        if labels.get(STACK) == stack.name or state.name in wanted:
            seen = observed_container(state, restart_counts)
            if seen.status == "running" and engine.runtime.awaiting_start(state.id):
                # a start killed between `runc create` and `runc start`: the record says
                # running and the process lives, but its command never ran
                seen = dataclasses.replace(seen, status="created")
            found[state.name] = seen
    return Observed(images=observe_images(engine, stack), containers=found)


def stack_containers(engine, stack_name: str) -> list:
    """Every container labelled with this stack (ContainerState rows)."""
    from reconciler.core.labels import STACK
    from reconciler.engine import containers
    return [r for r in containers.list_containers(engine, all=True)
            if (r.labels or {}).get(STACK) == stack_name]
