"""Running healthcheck probes: one by hand (`docker-mini healthcheck`), those due (watch), and
probing a container until it is healthy (apply's service_healthy)."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from reconciler.core import errors, health
from reconciler.core.health import HealthConfig, HealthState, ProbeResult
from reconciler.engine.health.state import config_of, run_started, stored, write

log = logging.getLogger(__name__)

POLL = 0.1                  # seconds between looks at a container that is waited on


# --- one probe -----------------------------------------------------------------------------


def _exec_probe(engine, rec, config: HealthConfig) -> ProbeResult:
    """Run the probe's command in the container, its output (stdout and stderr) collected;
    after `timeout` seconds it is killed and counts as a failure."""
    from reconciler.engine import interactive

    exec_root = engine.layout.container_dir(rec.id) / interactive.EXEC_DIR
    before = set(os.listdir(exec_root)) if exec_root.is_dir() else set()
    r, w = os.pipe()
    chunks: list[bytes] = []
    outcome: dict = {}

    def drain():
        kept = 0
        while data := os.read(r, 65536):
            if kept < health.OUTPUT_MAX:
                chunks.append(data)
                kept += len(data)

    def run():
        try:
            outcome["code"] = interactive.exec_(
                engine, rec.id, list(config.command), stdio=interactive.Stdio(stdin=None, stdout=w, stderr=w),
                caller_env={}).exit_code
        except errors.DockerMiniError as e:
            outcome["error"] = e
        finally:
            os.close(w)

    start = time.time()
    reader = threading.Thread(target=drain, daemon=True)
    runner = threading.Thread(target=run, daemon=True)
    reader.start()
    runner.start()
    runner.join(config.timeout)
    end = time.time()
    if runner.is_alive():
        _kill_new_sessions(exec_root, before)
        runner.join(2.0)
        reader.join(0.5)
        if not reader.is_alive():
            os.close(r)
        return health.timed_out(start, end, config.timeout)
    reader.join()
    os.close(r)
    output = health.clip_output(b"".join(chunks))
    if "error" in outcome:
        e = outcome["error"]
        code = 127 if isinstance(e, errors.CommandNotFound) else 126 if isinstance(e, errors.CommandNotExecutable) else -1
        return ProbeResult(start, end, code, output + str(e.message))
    code = outcome.get("code")
    return ProbeResult(start, end, -1 if code is None else code, output)


def _kill_new_sessions(exec_root: Path, before: set[str]) -> None:
    """A probe past its timeout is killed (its exec session is the one that appeared)."""
    import signal
    for name in (set(os.listdir(exec_root)) if exec_root.is_dir() else set()) - before:
        try:
            pid = int((exec_root / name / "pid").read_text())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError) as e:
            log.debug("timed-out probe session %s not killed: %s", name, e)


def probe(engine, name_or_id: str) -> HealthState:
    """Run the container's probe once now and record its result; its health after it.
    NoHealthcheck / ContainerNotRunning when there is nothing to probe."""
    from reconciler.engine import containers
    rec = containers.resolve(engine, name_or_id)
    config = config_of(engine, rec)
    if config is None:
        raise errors.InvalidArgument(f"container {rec.name} has no healthcheck",
                                     hint="add one to its spec (healthcheck: test: ...) or its image")
    state = containers.current_state(engine, rec)
    if state.status != "running":
        raise errors.ContainerNotRunning(f"container {rec.name} is not running")
    return _probe(engine, rec, config, state)


def _probe(engine, rec, config: HealthConfig, state) -> HealthState:
    started_at, started = run_started(state)
    result = _exec_probe(engine, rec, config)
    # another prober (watch, apply) may have recorded meanwhile: add to what is there now
    now = stored(engine, rec, started_at)
    after = health.after_probe(now, result, config, started)
    write(engine, rec.id, after)
    return after


def probe_due(engine, now: float | None = None) -> dict[str, HealthState]:
    """watch: probe every running container whose probe is due. {name: health after}."""
    from reconciler.engine import containers
    out = {}
    for c in containers.list_containers(engine, all=False):
        config = config_of(engine, c.record)
        if config is None:
            continue
        started_at, started = run_started(c.record.state)
        found = stored(engine, c.record, started_at)
        if health.next_probe(found, config, started) <= (now or time.time()):
            try:
                out[c.name] = _probe(engine, c.record, config, c.record.state)
            except errors.DockerMiniError as e:       # it stopped meanwhile, most likely
                log.debug("probe of %s not run: %s", c.name, e)
    return out


def next_due(engine) -> float | None:
    """When the next probe of any running container is due (epoch seconds), None if none."""
    from reconciler.engine import containers
    dues = []
    for c in containers.list_containers(engine, all=False):
        config = config_of(engine, c.record)
        if config is not None:
            started_at, started = run_started(c.record.state)
            dues.append(health.next_probe(stored(engine, c.record, started_at), config, started))
    return min(dues) if dues else None


def wait_healthy(engine, name_or_id: str, timeout: float | None = None) -> tuple[str, str]:
    """apply's service_healthy: probe the container as its schedule says until it is healthy.
    ("healthy", ""), or ("unhealthy"|"exited"|"timeout"|"no healthcheck", what was seen)."""
    from reconciler.engine import containers
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        rec = containers.resolve(engine, name_or_id)
        state = containers.current_state(engine, rec)
        if state.status != "running":
            return "exited", f"exited ({state.exit_code})" if state.exit_code is not None else state.status
        config = config_of(engine, rec)
        if config is None:
            return "no healthcheck", "it has no healthcheck"
        started_at, started = run_started(state)
        found = stored(engine, rec, started_at)
        if found.status == health.HEALTHY:
            return "healthy", ""
        if found.status == health.UNHEALTHY:
            last = found.log[-1] if found.log else None
            detail = f"exit {last.exit_code}: {last.output.strip()[:200]}" if last else ""
            return "unhealthy", f"unhealthy after {found.failing_streak} failed probes" + (f" ({detail})" if detail else "")
        due = health.next_probe(found, config, started)
        now = time.time()
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout", f"not healthy within {timeout:g}s (health: {found.status})"
        if due <= now:
            _probe(engine, rec, config, state)
            continue
        wait = min(due - now, POLL * 10)
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        time.sleep(max(wait, 0.01))


def wait_condition(engine, name_or_id: str, healthy: bool) -> None:
    """A depends_on condition, for apply: the container healthy (service_healthy, probing it
    meanwhile) or exited 0 (service_completed_successfully). ConflictError saying why not."""
    from reconciler.engine import containers
    if healthy:
        outcome, why = wait_healthy(engine, name_or_id)
        if outcome != "healthy":
            raise errors.ConflictError(f"{name_or_id} is not healthy: {why}")
        return
    rec = containers.resolve(engine, name_or_id)
    code = containers.wait(engine, rec.id)
    if code != 0:
        raise errors.ConflictError(f"{name_or_id} did not complete successfully: it exited ({code})")
