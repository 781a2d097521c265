"""Run a plan's actions through engine.containers and engine.images.

An action runs once every action it depends on has succeeded; when one fails, the actions that
depend on it (directly or not) are skipped and the rest proceeds. Pulls run side by side (they
wait on the network). A stop, and the stop a recreate begins with, sends its signal as soon as
its dependents have stopped, then waits in one loop with every other stop (engine.bulk: no
worker, no lock held), so N stops take about one grace period, not N/workers of them. Every
other action, and what follows a stop, runs one at a time, because the container, lease and
nftables state files are read-modify-written under the process-wide lock, which threads of
one process share.

Recreate keeps the stack from ending with neither container: the old container's options are
read first, then it is stopped and removed (its name, address and ports are what the new one
needs), then the new one is created; if that create fails, the old container is created again
from its own options (and started if it ran), and the action fails saying so.
"""

from __future__ import annotations

import concurrent.futures as futures
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from reconciler.core.errors import DockerMiniError, ImageNotFound
from reconciler.core.actions import Action, Kind
from reconciler.core import labels as label
from reconciler.core.spec import ServiceSpec, Stack, canonical_json
from reconciler.engine import bulk

PARALLEL_KINDS = {Kind.PULL, Kind.WAIT_HEALTHY, Kind.WAIT_COMPLETED}   # no lock: they wait
STOPPING_KINDS = {Kind.STOP, Kind.RECREATE}     # signal, wait (no worker, no lock), then the rest
POLL_FIRST, POLL_MAX = 0.002, 0.05              # the waiter's sleeps: short first (TERM-aware
                                                # processes end in milliseconds), then longer

Progress = Callable[[Action, str, str | None], None]   # (action, "start"|"done"|"failed"|"skipped", text)


@dataclass
class Outcome:
    done: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)
    skipped: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def summary(self) -> str:
        parts = [f"{len(self.done)} done"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return ", ".join(parts)


def execute(engine, stack: Stack, actions: list[Action], *, progress: Progress | None = None,
            workers: int = 16) -> Outcome:
    """Run `actions` in their dependency order. A stop (and a recreate's stop) takes a worker
    only to send its signal; the wait for the process to end is one loop here for all of them,
    so every stop whose dependents are stopped waits its grace period at once, however many
    there are; the teardown after it is queued like any other action."""
    outcome = Outcome()
    report = progress or (lambda *a: None)
    pending = {a.id: a for a in actions}
    state: dict[str, str] = {}                 # id -> done | failed | skipped
    serial = threading.Lock()
    waiting: list[bulk.Stopping] = []          # stop signal sent, process not ended yet
    stopping: dict[int, tuple[Action, float]] = {}   # id(Stopping) -> its action, its start
    created: dict[str, str] = {}               # name -> id of the containers created here

    def begin(action: Action):
        t0 = time.monotonic()
        if action.kind in PARALLEL_KINDS:
            run_action(engine, stack, action)
            return None, time.monotonic() - t0
        if action.kind in STOPPING_KINDS:
            s = signal_stop(engine, stack, action)
            if s is not None:
                return s, t0
        with serial:
            run_action(engine, stack, action, created)
        return None, time.monotonic() - t0

    def finish(action: Action, s: bulk.Stopping, t0: float):
        try:
            if s.error is not None:
                raise s.error
            with serial:
                run_after_stop(engine, stack, action)
        finally:
            s.release()              # its exit command left the teardown to us: now done
        return None, time.monotonic() - t0

    def succeeded(action: Action, elapsed: float) -> None:
        state[action.id] = "done"
        outcome.done.append(action)
        report(action, "done", f"{elapsed:.2f}s")

    def failed(action: Action, why: str) -> None:
        state[action.id] = "failed"
        outcome.failed.append((action, why))
        report(action, "failed", why)

    from reconciler.engine import network

    delay = POLL_FIRST
    with network.batch(engine), futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        running: dict[futures.Future, Action] = {}
        while pending or running or waiting:
            for aid, action in list(pending.items()):
                bad = [d for d in action.deps if state.get(d) in ("failed", "skipped")]
                if bad:
                    del pending[aid]
                    state[aid] = "skipped"
                    why = f"needs {bad[0]}, which " + ("failed" if state[bad[0]] == "failed" else "was skipped")
                    outcome.skipped.append((action, why))
                    report(action, "skipped", why)
                elif all(state.get(d) == "done" for d in action.deps):
                    del pending[aid]
                    report(action, "start", None)
                    running[pool.submit(engine.delegate(begin), action)] = action
            if not running and not waiting:
                # deps naming actions not in this plan: nothing can ever start them
                for aid, action in list(pending.items()):
                    del pending[aid]
                    state[aid] = "skipped"
                    outcome.skipped.append((action, "needs an action not in the plan"))
                    report(action, "skipped", "needs an action not in the plan")
                break
            if waiting:
                timeout = bulk.poll_delay(waiting, delay=delay)
                delay = min(delay * 1.5, POLL_MAX)
                if running:
                    finished, _ = futures.wait(running, timeout=timeout, return_when=futures.FIRST_COMPLETED)
                else:
                    time.sleep(timeout)
                    finished = set()
            else:
                finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for fut in finished:
                action = running.pop(fut)
                try:
                    s, value = fut.result()
                except DockerMiniError as e:
                    failed(action, str(e))
                except Exception as e:          # a bug must not hide the rest of the run
                    failed(action, f"{type(e).__name__}: {e}")
                else:
                    if s is None:
                        succeeded(action, value)
                    else:
                        waiting.append(s)
                        stopping[id(s)] = (action, value)
                        delay = POLL_FIRST
            over = bulk.poll(engine, waiting)
            bulk.release_ended(engine, over)         # those that ended together, side by side
            for s in over:
                action, t0 = stopping.pop(id(s))
                running[pool.submit(engine.delegate(finish), action, s, t0)] = action
    return outcome


def _timed(fn, *args) -> float:
    t0 = time.monotonic()
    fn(*args)
    return time.monotonic() - t0


# ---------------------------------------------------------------------------------------------


def run_action(engine, stack: Stack, action: Action, created: dict[str, str] | None = None) -> None:
    """created: name -> id of the containers this run created, filled by create and used by
    start (resolving a name reads every record: by id, a stack's start costs the same at 100)."""
    from reconciler.engine import containers, images

    spec = stack.containers.get(action.details.get("service", ""))
    target = action.details.get("id") or (created or {}).get(action.target) or action.target
    kind = action.kind
    if kind == "pull":
        images.pull(engine, action.target)
    elif kind == "create":
        rec = create_container(engine, stack, spec)
        if created is not None:
            created[action.target] = rec.id
    elif kind == "start":
        containers.start(engine, target)
    elif kind == "stop":
        containers.stop(engine, target, timeout=spec.stop_grace_period if spec else None)
    elif kind == "remove":
        containers.remove(engine, target, force=True)
    elif kind == "recreate":
        recreate(engine, stack, spec, target, start=action.details.get("start", True))
    elif kind == "update_resources":
        containers.update_resources(engine, target, spec.resources)
    elif kind == "remove_image":
        images.remove_images(engine, [action.target], force=False)
    elif kind in (Kind.WAIT_HEALTHY, Kind.WAIT_COMPLETED):
        from reconciler.engine.health.probe import wait_condition
        wait_condition(engine, action.target, kind == Kind.WAIT_HEALTHY)
    else:
        raise DockerMiniError(f"unknown action kind {kind!r}")


def _grace(stack: Stack, action: Action) -> float | None:
    spec = stack.containers.get(action.details.get("service", ""))
    return spec.stop_grace_period if spec is not None else None


def signal_stop(engine, stack: Stack, action: Action) -> bulk.Stopping | None:
    """First half of a stop or a recreate, quick: send the stop signal (the spec's grace period,
    else the container's). None when there is nothing to wait for: run_action does it all."""
    if action.kind == Kind.RECREATE:
        spec = stack.containers.get(action.details.get("service", ""))
        local_image(engine, stack, spec.image)           # fails before the old one is touched
    try:
        return bulk.begin_stop(engine, action.details.get("id") or action.target, _grace(stack, action),
                               removing=action.kind == Kind.RECREATE)
    except DockerMiniError:
        return None                                      # run_action meets it and says why


def run_after_stop(engine, stack: Stack, action: Action) -> None:
    """The rest of a stop or a recreate once the process has ended."""
    from reconciler.engine import containers

    target = action.details.get("id") or action.target
    if action.kind == Kind.STOP:
        containers.stop(engine, target, timeout=0)       # records the stop, releases what it held
        return
    spec = stack.containers.get(action.details.get("service", ""))
    recreate(engine, stack, spec, target, start=action.details.get("start", True), was_running=True)


def stack_labels(stack: Stack, spec: ServiceSpec, image_id: str) -> dict[str, str]:
    return {
        **dict(spec.labels),
        label.STACK: stack.name,
        label.SERVICE: spec.name,
        label.SPEC_HASH: spec.spec_hash,
        label.IMAGE_DIGEST: image_id,
        label.SPEC: canonical_json(spec.hashed_fields()),
    }


def create_options(stack: Stack, spec: ServiceSpec, image_id: str):
    from reconciler.engine.containers import CreateOptions

    return CreateOptions(
        image=spec.image,
        name=spec.container_name,
        command=list(spec.command) if spec.command is not None else None,
        entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
        env=list(spec.env),
        workdir=spec.working_dir,
        user=spec.user,
        hostname=spec.hostname,
        resources=None if spec.resources.is_unlimited else spec.resources,
        storage_size=spec.disk,
        volumes=list(spec.volumes), **spec.create_extras(),
        network=spec.network,
        ip=spec.ip,
        mac=spec.mac,
        ports=list(spec.ports),
        labels=stack_labels(stack, spec, image_id),
        # enforced by the container's monitor (conmon's exit command), as `run --restart`, so
        # it holds with no watch running; a watcher restarts too, and whichever comes first
        # wins (a start replaces the run token the exit path checks)
        restart=spec.restart,
        stop_signal=spec.stop_signal,
        stop_timeout=spec.stop_grace_period,
    )


def local_image(engine, stack: Stack, ref: str):
    """The image record for ref: local, else pulled unless the pull policy is never."""
    from reconciler.engine import images

    if stack.image_spec(ref).pull == "never":
        try:
            return engine.images.resolve(ref)
        except ImageNotFound:
            raise ImageNotFound(f"image {ref} is not present and its pull policy is never",
                                hint=f"docker-mini pull {ref}") from None
    return images.ensure_image(engine, ref)


def create_container(engine, stack: Stack, spec: ServiceSpec) -> dict:
    from reconciler.engine import containers

    image = local_image(engine, stack, spec.image)
    return containers.create(engine, create_options(stack, spec, image.id))


def recreate(engine, stack: Stack, spec: ServiceSpec, old: str, start: bool,
             was_running: bool | None = None) -> None:
    """was_running: the old container ran before its stop began (execute stops it first)."""
    from reconciler.engine import containers
    from reconciler.engine.containers import CreateOptions

    image = local_image(engine, stack, spec.image)      # fails before the old one is touched
    record = containers.resolve(engine, old)
    old_opts = CreateOptions.from_dict(record.options.to_dict())
    old_opts.name = record.name or old_opts.name
    if was_running is None:
        was_running = containers.is_running(engine, record)
    containers.stop(engine, record.id, timeout=spec.stop_grace_period)
    containers.remove(engine, record.id, force=True)
    try:
        containers.create(engine, create_options(stack, spec, image.id))
    except DockerMiniError as e:
        try:
            containers.create(engine, old_opts)
            if was_running:
                containers.start(engine, old_opts.name)
        except DockerMiniError as e2:
            raise type(e)(f"{e}; restoring the previous container failed too: {e2}") from None
        raise type(e)(f"{e} (the previous container was restored)", hint=e.hint) from None
    if start:
        containers.start(engine, spec.container_name)
