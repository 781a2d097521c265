"""Whether a container's process still lives: read-only (ps, inspect and logs stop here).

The status on disk is what docker-mini last did; current_state() also reads conmon's exit file
and the pid, so a container that died alone or was killed from outside shows as exited with its
real code. The first mutating command that meets such a container reaps it (runc delete,
network teardown, unmount): see reaping, which this module must not import (nor networking).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from reconciler.engine.containers.records import ContainerRecord, RunState
from reconciler.engine.containers.store import iso_of_mtime, monitor_paths, now_iso

KILL_WAIT = 10.0          # seconds to wait for the exit after SIGKILL


def current_state(engine, rec: ContainerRecord, grace: float = 0.3) -> RunState:
    """The run state as it really is now (a copy): exit files and pids checked, nothing changed."""
    procs = engine.processes
    st = dataclasses.replace(rec.state)
    if st.status == "creating":
        creator = st.creator or [0, None]
        st.status = "creating" if procs.pid_alive(creator[0], creator[1]) else "dead"
        return st
    if st.status != "running":
        return st
    paths = monitor_paths(engine, rec.id)
    exit_path = procs.exit_file(paths, rec.id)
    code = procs.read_int(exit_path)
    if code is None and not procs.pid_alive(st.pid, st.pid_start):
        # the process is gone: conmon records its status in a moment (well under a millisecond
        # usually: poll finely first, so a foreground `run` does not sleep 10 ms for it), unless
        # conmon died too
        deadline = time.monotonic() + grace
        delay = 0.0005
        while code is None and time.monotonic() < deadline and procs.pid_alive(st.conmon_pid):
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
            code = procs.read_int(exit_path)
        if code is None:
            code = procs.read_int(exit_path)
        if code is None:
            return dataclasses.replace(
                st, status="exited", exit_code=255, finished_at=st.finished_at or now_iso(),
                error=f"the container's monitor ({_monitor_name(st)}) disappeared", pid=0)
    if code is not None:
        st = dataclasses.replace(st, status="exited", exit_code=code, pid=0,
                                 finished_at=iso_of_mtime(exit_path) or now_iso(),
                                 oom_killed=Path(paths.oom).exists())
    return st


def _monitor_name(state: RunState) -> str:
    return "the docker-mini run in front of it" if state.monitor == "cli" else "conmon"


def is_running(engine, rec: ContainerRecord) -> bool:
    return current_state(engine, rec).running


def wait_exit_file(engine, rec: ContainerRecord, timeout: float | None) -> int | None:
    """The exit code once the process has ended, or None after timeout seconds (None: forever)."""
    procs = engine.processes
    exit_path = procs.exit_file(monitor_paths(engine, rec.id), rec.id)
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.002
    while True:
        code = procs.read_int(exit_path)
        if code is not None:
            return code
        seen = current_state(engine, rec, grace=0.5)
        if not seen.running:
            return seen.exit_code
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)


def send_signal(engine, rec: ContainerRecord, sig: int) -> bool:
    """Signal the container's process; False if it is no longer there."""
    return engine.processes.signal_pid(rec.state.pid, sig, rec.state.pid_start)
