"""Observe the actual state a stack's plan is made against: the local images its spec names and
every container (the planner itself keeps to this stack's), with labels, status and limits."""

from __future__ import annotations

from reconciler.core.errors import DockerMiniError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from reconciler.core.plan import Observed, ObservedContainer
    from reconciler.core.spec import Stack

# core.spec and core.plan (yaml, dataclasses, ~40 ms) are imported by the functions that plan:
# `ps` imports this module only for is_restarting.

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
    options = record.get("options") or {}
    if "resources" in options:
        resources = Resources.from_dict(options.get("resources") or {})
    status = "dead" if state.status in BROKEN else state.status
    restarts = (restart_counts or {}).get(state.id)
    if restarts is None:
        restarts = (record.get("state") or {}).get("restart_count", 0) or 0
    return ObservedContainer(
        name=state.name, id=state.id, stack=labels.get(label.STACK), service=labels.get(label.SERVICE),
        spec_hash=labels.get(label.SPEC_HASH), spec=spec,
        image_digest=labels.get(label.IMAGE_DIGEST) or record.get("image_id"),
        status=status, exit_code=state.exit_code, resources=resources, restart_count=restarts,
        manually_stopped=bool((record.get("state") or {}).get("manually_stopped")))


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
            found[state.name] = observed_container(state, restart_counts)
    return Observed(images=observe_images(engine, stack), containers=found)


def stack_containers(engine, stack_name: str) -> list:
    """Every container labelled with this stack (ContainerState rows)."""
    from reconciler.core.labels import STACK
    from reconciler.engine import containers
    return [r for r in containers.list_containers(engine, all=True)
            if (r.labels or {}).get(STACK) == stack_name]


RESTART_BACKOFF_FILE = "restart-backoff.json"     # written by the watcher (reconciler/watch.py)


def restart_backoff(engine, container_id: str) -> dict | None:
    """The watcher's restart state of a stack container, or None: count, delay, policy,
    last_exit_code, restarted_at and next_restart (ISO time while a restart is held back)."""
    from reconciler.adapters import statefiles
    try:
        return statefiles.read_json(f"{engine.layout.container_dir(container_id)}/{RESTART_BACKOFF_FILE}",
                                 default=None)
    except DockerMiniError:
        return None


def is_restarting(engine, container_id: str, status: str, now: float, stale_after: float = 600.0) -> bool:
    """For `ps`: an exited container whose restart the watcher holds back shows as
    `Restarting (CODE) N seconds ago` (Docker's words). A hold more than stale_after seconds
    overdue means no watcher is acting on it any more."""
    if status != "exited":
        return False
    entry = restart_backoff(engine, container_id)
    if not entry or not entry.get("next_restart"):
        return False
    import datetime as dt
    try:
        due = dt.datetime.fromisoformat(entry["next_restart"].replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return now - due < stale_after
