"""`update`: new resource limits for a container, applied in place and recorded."""

from __future__ import annotations

from reconciler.core.limits import to_oci_resources
from reconciler.engine.containers.liveness import current_state
from reconciler.engine.containers.reaping import reap
from reconciler.engine.containers.store import resolve, save


def update_resources(engine, name_or_id: str, resources) -> None:
    """New limits for a container, applied in place (runc update) when it runs, and recorded."""
    with engine.mutation():
        rec = reap(engine, resolve(engine, name_or_id))
        if current_state(engine, rec).running:
            engine.runtime.update(rec.id, to_oci_resources(resources, engine.cgroups.swap_accounting()))
        rec.options.resources = resources
        save(engine, rec)
