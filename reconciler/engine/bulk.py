"""Stop, kill and remove many containers at once: waiting is not work.

A stop is a signal, a wait of up to the grace period, maybe a SIGKILL, then the teardown.
Done one container after another, N containers that ignore SIGTERM take N grace periods. Here
every container is signalled first (each under the lock for a moment), then one loop, holding
no lock, waits for all of them at the same time and SIGKILLs each one whose grace period has
passed; the teardowns follow, each under the lock. N containers take about one grace period.

Each function answers [(name, None | the error)] in the order of the names given, so the caller
(the CLI, system prune) reports each name as the one-by-one commands did. `Stopping` and
`wait_stopped` are also used by engine.execute for the stops of a plan.
"""

from __future__ import annotations

import logging
import math
import os
import select
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reconciler.core.errors import ContainerNotRunning, ContainerRuntimeError, DockerMiniError
from reconciler.engine.containers.stop_claim import StopClaim

KILL_WAIT = 10.0          # seconds to wait for an exit after SIGKILL (as containers.stop)
POLL_MAX = 0.05           # the longest sleep between two looks at the waited processes
BLOCK_MAX = 1.0           # wait_stopped's longest block on the pidfds (an end wakes it at once)
RELEASE_WORKERS = 4       # release_ended's threads: runc processes and unmounts side by side

log = logging.getLogger(__name__)

Results = list[tuple[str, "Exception | None"]]


@dataclass
class Stopping:
    """A container whose stop signal has been sent: the process to wait for, until when."""
    name: str
    id: str
    pid: int
    pid_start: int | None
    deadline: float | None            # monotonic time of the SIGKILL; None: wait for ever
    killed: bool = False
    error: Exception | None = None    # the SIGKILL could not be sent, or did not end it
    claim: StopClaim | None = None    # held until its teardown is done: see release()
    pidfd: int | None = None          # readable once the process has ended (opened on first look)

    def release(self) -> None:
        """The stop claim released: call once the container's teardown is done (or failed)."""
        self.close_pidfd()
        if self.claim is not None:
            self.claim.release()
            self.claim = None

    def watch(self, processes) -> bool:
        """The process's pidfd opened (once); False when the process has ended already."""
        if self.pidfd is None:
            try:
                fd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                return False
            except OSError:                          # no descriptor left: looked at in /proc
                return processes.pid_alive(self.pid, self.pid_start)
            if not processes.pid_alive(self.pid, self.pid_start):    # a zombie, or a reused pid
                os.close(fd)
                return False
            self.pidfd = fd
        return True

    def close_pidfd(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _stop_signal(rec) -> str:
    return rec.config.stop_signal or "SIGTERM"


def _grace(rec, timeout: float | None) -> float:
    from reconciler.core.ociprocess import DEFAULT_STOP_TIMEOUT
    if timeout is None:
        timeout = rec.options.stop_timeout
    return DEFAULT_STOP_TIMEOUT if timeout is None else timeout


def begin_stop(engine, name: str, timeout: float | None = None, removing: bool = False) -> Stopping | None:
    """Send `name` its stop signal (SIGKILL when the grace period is 0) and return what to wait
    for, or None when it is not running (containers.stop then only records the stop).
    The container's stop claim is taken first, so its exit command leaves the teardown to the
    caller, who must call the Stopping's release() once it is done. Not for an --rm container
    that is only stopped (removing=False): its exit command removes it."""
    from reconciler.engine import containers

    rec = containers.resolve(engine, name)
    if not containers.is_running(engine, rec):
        return None
    grace = _grace(rec, timeout)
    claim = None
    if removing or not rec.options.auto_remove:
        claim = StopClaim(engine.layout.container_dir(rec.id))
        claim.acquire()
    now = time.monotonic()
    try:
        if grace == 0:
            containers.kill(engine, rec.id, "KILL")
        else:
            containers.kill(engine, rec.id, _stop_signal(rec))
    except BaseException as e:
        if claim is not None:
            claim.release()
        if isinstance(e, ContainerNotRunning):
            return None                              # it ended in between
        raise
    return Stopping(name, rec.id, rec.state.pid, rec.state.pid_start,
                    None if grace < 0 else now + (KILL_WAIT if grace == 0 else grace),
                    killed=grace == 0, claim=claim)


def poll(engine, waiting: list[Stopping], now: float | None = None) -> list[Stopping]:
    """One look at the waited processes: those that ended (or are beyond help) are returned and
    taken out of `waiting`; each one past its grace period is sent SIGKILL. Takes no lock: the
    stop signal already recorded the stop, and a pidfd makes the SIGKILL reach that process only."""
    processes = engine.processes
    now = time.monotonic() if now is None else now
    ended = _ended(processes, waiting, 0)
    over = []
    for s in list(waiting):
        if id(s) in ended:
            over.append(s)
        elif s.deadline is not None and now >= s.deadline:
            if s.killed:
                s.error = ContainerRuntimeError(f"container {s.name} did not exit after SIGKILL")
                over.append(s)
                continue
            s.killed = True
            s.deadline = now + KILL_WAIT
            if not processes.signal_pid(s.pid, signal.SIGKILL, s.pid_start):
                over.append(s)                       # it ended in between
    for s in over:
        waiting.remove(s)
        s.close_pidfd()
    return over


def _ended(processes, waiting: list[Stopping], timeout: float) -> set[int]:
    """id() of each Stopping whose process has ended, after waiting up to `timeout` seconds for
    one to end: one poll(2) on their pidfds, not a read of /proc for each (a down of 100 looks
    20 times a second for 10 s)."""
    ended = {id(s) for s in waiting if not s.watch(processes)}
    if ended:
        return ended
    by_fd = {s.pidfd: s for s in waiting if s.pidfd is not None}
    if len(by_fd) < len(waiting):
        timeout = min(timeout, POLL_MAX)             # some are only seen by looking again
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    return {id(by_fd[fd]) for fd, _ in poller.poll(max(0, math.ceil(timeout * 1000)))}


def poll_delay(waiting: list[Stopping], now: float | None = None, delay: float = POLL_MAX) -> float:
    """How long to sleep before the next poll: at most `delay`, less when a deadline is nearer."""
    now = time.monotonic() if now is None else now
    deadlines = [s.deadline for s in waiting if s.deadline is not None]
    return max(0.0, min([delay, *(d - now for d in deadlines)]))


def wait_stopped(engine, waiting: list[Stopping]) -> None:
    """Until every process in `waiting` has ended (SIGKILLed at its deadline); holds no lock."""
    waiting = list(waiting)
    while waiting:
        poll(engine, waiting)
        if waiting:
            _ended(engine.processes, waiting, poll_delay(waiting, delay=BLOCK_MAX))


def release_ended(engine, ended: list[Stopping]) -> None:
    """What each ended container's reap would release one after another, several at a time and
    under the lock taken once: the runc state deleted (a runc process each) and the rootfs
    unmounted. The reap that follows (stop, rm) finds them done and records the rest; whatever
    failed here it does again, and says why. OOM kills are recorded first (the runc delete
    takes the cgroup that tells)."""
    from reconciler.engine.containers.reaping import oom_killed
    from reconciler.engine.containers.store import load, monitor_paths, write_file

    ended = [s for s in ended if s.error is None]
    if len(ended) < 2:
        return

    def release(s: Stopping) -> None:
        try:
            rec = load(engine, s.id)
            if rec is None or not rec.state.running or engine.processes.pid_alive(s.pid, s.pid_start):
                return
            if oom_killed(engine, rec):
                write_file(monitor_paths(engine, s.id).oom, b"", 0o644)
            runtime.delete(s.id, force=True)
            overlay.unmount_rootfs(engine.layout, s.id)
        except (DockerMiniError, OSError) as e:
            log.debug("early release of %s: %s", s.id[:12], e)

    runtime, overlay = engine.runtime, engine.overlay       # made once, before the threads
    with engine.mutation(), ThreadPoolExecutor(max_workers=min(RELEASE_WORKERS, len(ended))) as pool:
        list(pool.map(release, ended))


def _results(names, errors: dict[int, Exception]) -> Results:
    return [(name, errors.get(i)) for i, name in enumerate(names)]


def stop_many(engine, names, timeout: float | None = None) -> Results:
    """`docker-mini stop A B C...`: all signalled, all waited for at once, then torn down."""
    from reconciler.engine import network

    with network.batch(engine):
        return _stop_many(engine, list(names), timeout)


def _stop_many(engine, names: list[str], timeout: float | None) -> Results:
    stopping: dict[int, Stopping] = {}
    try:
        return _stop_all(engine, names, timeout, stopping)
    finally:
        for s in stopping.values():
            s.release()


def _stop_all(engine, names: list[str], timeout: float | None, stopping: dict[int, "Stopping"]) -> Results:
    from reconciler.engine import containers

    errors: dict[int, Exception] = {}
    for i, name in enumerate(names):
        try:
            s = begin_stop(engine, name, timeout)
        except DockerMiniError as e:
            errors[i] = e
            continue
        if s is not None:
            stopping[i] = s
    wait_stopped(engine, list(stopping.values()))
    release_ended(engine, list(stopping.values()))
    for i, name in enumerate(names):
        if i in errors:
            continue
        s = stopping.get(i)
        if s is not None and s.error is not None:
            errors[i] = s.error
            continue
        try:
            # the process has ended: this records the stop and releases what it held
            containers.stop(engine, s.id if s is not None else name, timeout=0 if s else timeout)
        except DockerMiniError as e:
            errors[i] = e
    return _results(names, errors)


def kill_many(engine, names, signal: str = "KILL") -> Results:
    """`docker-mini kill A B C...` (a signal is not waited for: nothing to overlap)."""
    from reconciler.engine import containers

    names = list(names)
    errors: dict[int, Exception] = {}
    for i, name in enumerate(names):
        try:
            containers.kill(engine, name, signal)
        except DockerMiniError as e:
            errors[i] = e
    return _results(names, errors)


def remove_many(engine, names, force: bool = False) -> Results:
    """`docker-mini rm [-f] A B C...`, `system prune`: with force, every running one is SIGKILLed
    first and all are waited for at once; then each is removed."""
    from reconciler.engine import network

    with network.batch(engine):
        return _remove_many(engine, list(names), force)


def _remove_many(engine, names: list[str], force: bool) -> Results:
    from reconciler.engine import containers

    errors: dict[int, Exception] = {}
    killed: list[Stopping] = []
    try:
        if force:
            for name in names:
                try:
                    s = begin_stop(engine, name, 0, removing=True)
                except DockerMiniError:
                    continue                         # remove below says why, in its words
                if s is not None:
                    killed.append(s)
            wait_stopped(engine, killed)
            release_ended(engine, killed)
        for i, name in enumerate(names):
            try:
                containers.remove(engine, name, force=force)
            except DockerMiniError as e:
                errors[i] = e
    finally:
        for s in killed:
            s.release()
    return _results(names, errors)
