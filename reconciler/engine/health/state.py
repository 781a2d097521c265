"""A container's healthcheck (its spec's over its image's) and its health, kept in health.json
beside the record (atomically; each new run of the container starts over). ps and inspect read here, without the exec machinery of engine.health.probe."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from reconciler.core import errors, health
from reconciler.core import labels as label
from reconciler.core.health import HealthConfig, HealthState

log = logging.getLogger(__name__)

FILE = "health.json"


def config_of(engine, rec) -> HealthConfig | None:
    """The container's healthcheck: its spec's (from the spec label) over its image's."""
    spec = None
    text = (rec.labels or {}).get(label.SPEC)
    if text:
        try:
            spec = json.loads(text).get("healthcheck")
        except (ValueError, AttributeError):
            spec = None
    image_hc = None
    image = engine.images.get(rec.image_id) if rec.image_id else None
    if image is not None:
        try:
            cfg = engine.images.config(image)
            image_hc = ((cfg or {}).get("config") or {}).get("Healthcheck")
        except (OSError, ValueError, errors.DockerMiniError) as e:
            log.debug("image config of %s not read: %s", rec.short_id, e)
    try:
        return health.merge(image_hc if isinstance(image_hc, dict) else None,
                            spec if isinstance(spec, dict) else None)
    except health.HealthcheckError as e:
        log.debug("healthcheck of %s unusable: %s", rec.short_id, e)
        return None


def _path(engine, cid: str) -> Path:
    return engine.layout.container_dir(cid) / FILE


def run_started(state) -> tuple[str, float]:
    started = state.started_at or ""
    try:
        return started, health.epoch(started)
    except ValueError:
        return started, time.time()


def read(engine, rec, state=None) -> HealthState | None:
    """The health of the container's current run (None: no healthcheck, or not running)."""
    from reconciler.engine import containers
    state = state if state is not None else containers.current_state(engine, rec)
    if state.status != "running" or config_of(engine, rec) is None:
        return None
    return stored(engine, rec, state.started_at or "")


def status_of(engine, rec, state) -> str | None:
    """For ps: starting | healthy | unhealthy, or None (no healthcheck or not running). A
    recorded result is read from the file alone; the image config only before the first."""
    if state.status != "running":
        return None
    path = _path(engine, rec.id)
    if path.exists():
        found = stored(engine, rec, state.started_at or "")
        if found.log or found.status != health.STARTING:
            return found.status
    return health.STARTING if config_of(engine, rec) is not None else None


def stored(engine, rec, started_at: str) -> HealthState:
    try:
        data = engine.state_files.read_json(_path(engine, rec.id), default=None)
        found = HealthState.from_json(data) if data else None
    except (errors.DockerMiniError, OSError, ValueError, TypeError, KeyError):
        found = None
    if found is None or found.started_at != started_at:
        return HealthState(started_at=started_at)          # a new run starts over
    return found


def write(engine, cid: str, state: HealthState) -> None:
    path = _path(engine, cid)
    if path.parent.is_dir():                 # never recreate a removed container's directory
        engine.state_files.write_json(path, state.to_json())


