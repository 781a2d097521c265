"""`docker-mini watch DIR`: keep the host converged to the stack spec in DIR.

Reconciles at start, after every change under DIR (debounced; the spec is read again each
time), on SIGHUP, when a container's process ends (conmon's exit file), and every --interval
seconds, which repairs any drift: a container that died, was removed or was killed from
outside. The watcher is the restart authority for stack containers (they are created without
a runtime restart policy): the plan starts an exited container again as its spec's `restart`
says (core.restart decides; the action's reason is a PolicyRestart), and the watcher holds each
restart back by a per-container exponential backoff (1 s doubling to 5 min, forgotten after 10
min of clean running) that engine.backoff keeps on disk, so `ps` can show `Restarting (1) 4
seconds ago` and a restarted watcher keeps it. A crash-looping container never makes the loop spin: the loop only wakes on
a change, a signal, the interval or the next due restart. A thread of its own runs the
healthchecks of every running container that has one, each when due (engine.health).

An invalid spec is reported and the last good one is kept. SIGTERM/SIGINT stop the watcher
after the reconcile in progress (containers keep running).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import structlog

from reconciler.core.actions import Action, Kind, PolicyRestart
from reconciler.core.errors import DockerMiniError, SpecError
from reconciler.engine import backoff


HEALTH_LOOK = 1.0          # seconds between looks for containers with a healthcheck


class Watcher:
    def __init__(self, engine, directory: str | os.PathLike, *, interval: float = 10.0,
                 debounce: float = 0.5):
        self.engine = engine
        self.directory = Path(directory)
        self.interval = interval
        self.debounce = debounce
        self.log = structlog.get_logger("docker-mini.watch")
        self.stack = None                     # the last good spec
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = True                   # read the spec on the next pass
        self._next_restart: float | None = None

    # signals and file changes ---------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload = True
        self._wake.set()

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGHUP:
            self.log.info("reload requested", signal="SIGHUP")
            self.request_reload()
        else:
            self.log.info("stopping", signal=signal.Signals(signum).name)
            self.stop()

    def _watch_spec(self) -> None:
        target = self.directory if self.directory.is_dir() else self.directory.parent
        only = None if self.directory.is_dir() else self.directory.resolve()

        def changed(paths):
            paths = sorted(p for p in paths if only is None or Path(p).resolve() in (only, only.parent / ".env"))
            if paths:
                self.log.info("spec changed", paths=paths)
                self.request_reload()

        self._watch(target, None, changed, recursive=only is None)   # a file: just its directory

    def _watch_exits(self) -> None:
        """conmon writes a container's exit file when its process ends: reconcile at once
        instead of at the next interval (restart policies, with their backoff)."""
        containers_dir = self.engine.layout.containers_dir
        try:
            containers_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            return

        def exited(paths):
            self.log.info("container exited", exit_files=len(paths))
            self._wake.set()

        self._watch(containers_dir, lambda change, path: Path(path).parent.name == "exits", exited)

    def _watch(self, target: Path, watch_filter, on_change, recursive: bool = True) -> None:
        import watchfiles

        kwargs = {"watch_filter": watch_filter} if watch_filter is not None else {}
        try:
            for changes in watchfiles.watch(target, stop_event=self._stop,
                                            debounce=int(self.debounce * 1000), step=50,
                                            raise_interrupt=False, recursive=recursive, **kwargs):
                on_change({p for _, p in changes})
        except Exception as e:               # the timer still repairs drift without it
            self.log.error("file watching stopped", path=str(target), error=str(e))

    def _probe_health(self) -> None:
        """Run the healthchecks of every running container that has one, each when it is due
        (a thread of its own: a slow probe never holds up a reconcile)."""
        from reconciler.engine.health import probe as health

        seen: dict[str, str] = {}
        while not self._stop.is_set():
            try:
                for name, state in health.probe_due(self.engine).items():
                    if seen.get(name) != state.status:
                        last = state.log[-1] if state.log else None
                        self.log.info("health", container=name, status=state.status,
                                      failing_streak=state.failing_streak,
                                      exit_code=last.exit_code if last else None)
                        seen[name] = state.status
                due = health.next_due(self.engine)
            except Exception as e:             # keep probing; the next round tries again
                self.log.error("healthchecks failed", error=str(e))
                due = None
            wait = HEALTH_LOOK if due is None else min(HEALTH_LOOK, max(0.05, due - time.time()))
            self._stop.wait(wait)

    # the loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Until SIGTERM/SIGINT. Returns the exit code (0; 1 if no spec was ever valid)."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                handlers[sig] = signal.signal(sig, self._on_signal)
        watchers = [threading.Thread(target=fn, name=fn.__name__, daemon=True)
                    for fn in (self._watch_spec, self._watch_exits, self._probe_health)]
        for t in watchers:
            t.start()
        self.log.info("watching", directory=str(self.directory), interval=self.interval)
        try:
            while not self._stop.is_set():
                self.reconcile_once()
                if self._stop.is_set() or self._reload:
                    continue                    # a change came in during the pass
                timeout = self.interval
                if self._next_restart is not None:
                    timeout = max(0.05, min(timeout, self._next_restart - time.time()))
                self._wake.wait(timeout)
                self._wake.clear()
        finally:
            for sig, old in handlers.items():
                signal.signal(sig, old)
            self._stop.set()
            for t in watchers:
                t.join(timeout=2)
            self.log.info("stopped")
        return 0 if self.stack is not None else 1

    def load(self) -> None:
        from reconciler.engine import stacks

        self._reload = False
        try:
            stack = stacks.load(self.engine, self.directory)
        except SpecError as e:
            errors = [str(x) for x in getattr(e, "errors", [e])]
            self.log.error("invalid spec, keeping the last good one", errors=errors,
                           keeping=self.stack.name if self.stack else None)
            return
        if self.stack is not None and stack.name != self.stack.name:
            self.log.warning("stack renamed: the old stack's containers are left alone",
                             old=self.stack.name, new=stack.name)
        if self.stack != stack:
            self.log.info("spec loaded", stack=stack.name, containers=len(stack.containers))
        self.stack = stack

    def reconcile_once(self) -> None:
        from reconciler.engine import stacks

        if self._reload:
            self.load()
        if self.stack is None:
            return
        self._next_restart = None
        stack = self.stack
        try:
            ids = [c.id for c in self._stack_rows(stack)]
            result = stacks.apply(self.engine, stack, restart_policies=True,
                                  restart_counts=backoff.restart_counts(self.engine, ids),
                                  filter_actions=self._gate_restarts, progress=self._progress)
        except DockerMiniError as e:
            self.log.error("reconcile failed", stack=stack.name, error=str(e))
            return
        except Exception as e:                     # keep serving; the next pass tries again
            self.log.exception("reconcile crashed", stack=stack.name, error=str(e))
            return
        if result.planned:
            self.log.info("reconciled", stack=stack.name, summary=result.outcome.summary(),
                          failed=[f"{a.kind} {a.target}: {why}" for a, why in result.outcome.failed])

    def _stack_rows(self, stack):
        from reconciler.engine.observe import stack_containers
        return stack_containers(self.engine, stack.name)

    def _gate_restarts(self, actions: list[Action]) -> list[Action]:
        """Hold back restarts whose backoff has not expired; record the others."""
        now = time.time()
        out, held = [], set()
        for a in actions:
            if any(d in held for d in a.deps):
                held.add(a.id)                  # waits for a held restart: the next pass
                continue
            if a.kind != Kind.START or not isinstance(a.reason, PolicyRestart):
                out.append(a)
                continue
            cid = a.details.get("id", "")
            policy, code = str(a.reason.policy), a.reason.exit_code
            due = backoff.due(self.engine, cid, now)
            if due > now:
                backoff.hold(self.engine, cid, policy, code, due)
                self._next_restart = due if self._next_restart is None else min(self._next_restart, due)
                held.add(a.id)
                self.log.info("restart delayed", container=a.target, cause=a.cause,
                              in_seconds=round(due - now, 1))
                continue
            entry = backoff.record_restart(self.engine, cid, policy, code, now)
            self.log.info("restarting", container=a.target, cause=a.cause, restart=entry.count,
                          next_delay=entry.delay)
            out.append(a)
        return out

    def _progress(self, action: Action, status: str, text: str | None) -> None:
        if status == "start":
            return
        level = self.log.info if status == "done" else self.log.error
        level(status, action=action.kind, target=action.target, cause=action.cause, detail=text)

