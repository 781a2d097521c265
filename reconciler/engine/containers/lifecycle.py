"""Starting, stopping, killing, restarting and waiting for a container.

Every change of state happens under engine.mutation(); waiting for a process to end happens
outside it, so the exit command conmon runs (reconciler.exit_hook) can take the lock meanwhile.
A stop holds the container's stop claim from its signal to its reap: the exit command then
leaves the work to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from reconciler.core.errors import (CommandNotExecutable, CommandNotFound, ConflictError,
                                    ContainerNotRunning, ContainerRuntimeError, DockerMiniError)
from reconciler.core.ociprocess import DEFAULT_STOP_TIMEOUT, parse_signal
from reconciler.engine import network
from reconciler.engine.containers.bundle import build_bundle
from reconciler.engine.containers.liveness import KILL_WAIT, current_state, send_signal, wait_exit_file
from reconciler.engine.containers.reaping import oom_killed, reap, release_runtime, uses_network_setup
from reconciler.engine.containers.records import ContainerRecord, RunState
from reconciler.engine.containers.removal import remove, removed_if_orphaned
from reconciler.engine.containers.stop_claim import StopClaim
from reconciler.engine.containers.sockets import socket_dir
from reconciler.engine.containers.store import (container_dir, load, monitor_paths, now_iso, resolve, save,
                                                write_file)

log = logging.getLogger(__name__)


def _exit_command(engine, rec: ContainerRecord, pid_token: str) -> list[str]:
    settings = ["--root", str(engine.layout.root)]
    source = engine.config.source
    if source.startswith("/") and Path(source).exists():
        settings += ["--config", source]
    # not the CLI: the hook imports only what its answer needs (most exits need nothing)
    settings += ["--container-dir", str(container_dir(engine, rec.id))]
    return [sys.executable, "-m", "reconciler.exit_hook", *settings, rec.id, pid_token]


def start(engine, name_or_id: str, *, on_created: Callable[[ContainerRecord], Any] | None = None,
          stdin_once: bool = False, by_policy: bool = False) -> ContainerRecord:
    """Start a created or exited container (no-op if running). on_created(record) is called
    once the process exists but before it runs (attach to it there, so no output is lost).
    conmon runs reconciler.exit_hook when the process ends (reap, --rm, restart policy).
    stdin_once: the attached user's EOF closes the container's stdin (`run -i`, `start -ai`
    without -t); otherwise it stays open for later attaches (conmon --leave-stdin-open)."""
    with engine.mutation():
        rec, startable = _startable(engine, name_or_id)
        if not startable:
            return rec
        cid = rec.id
        runtime = engine.runtime
        paths = monitor_paths(engine, cid)
        opts = rec.options
        try:
            _prepare(engine, rec)
            token = str(time.time_ns())
            interactive = bool(opts.interactive)
            pid = runtime.create(
                cid, rec.name, paths, terminal=bool(opts.tty), stdin=interactive,
                leave_stdin_open=interactive and not stdin_once,
                exit_command=_exit_command(engine, rec, token), socket_dir=socket_dir(engine))
            _mark_running(engine, rec, pid, engine.processes.read_int(paths.conmon_pidfile) or 0,
                          token, by_policy)
            if on_created is not None:
                on_created(rec)
            runtime.start(cid)
        except BaseException as e:
            _abort_start(engine, rec, e)
            raise
    return rec


def run_attached(engine, name_or_id: str, emit: Callable[[str, bytes], Any], *,
                 on_started: Callable[[Any], Any] | None = None) -> int:
    """Start a container with this process as its monitor (a foreground `run` without -d, -i,
    -t or a restart policy: nothing needs to outlive the CLI), passing its output to
    emit(stream, data) and to its log until it ends; returns its exit code. One `runc run`
    does what conmon, `runc start` and `runc delete` do otherwise. on_started(handle) gets
    something with .signal(signum) for forwarding signals. emit returning False stops that
    stream (the reader went away). Then call finish_attached()."""
    procs = engine.processes
    with engine.mutation():
        rec, startable = _startable(engine, name_or_id)
        if not startable:
            raise ConflictError(f"container {name_or_id} is already running")
        cid = rec.id
        runtime = engine.runtime
        paths = monitor_paths(engine, cid)
        # a memory limit can OOM-kill: keep the stopped container until its cgroup is read
        keep = bool(rec.options.resources is not None and rec.options.resources.memory)
        run = None
        try:
            _prepare(engine, rec)
            run = runtime.run_attached(cid, paths, keep=keep)
            pid = run.started()
            _mark_running(engine, rec, pid, os.getpid(), str(time.time_ns()), by_policy=False,
                          monitor="cli")
        except BaseException as e:
            if run is not None:
                run.abandon()
            _abort_start(engine, rec, e)
            raise
    if on_started is not None:
        on_started(run)
    container_log = procs.ContainerLog(paths.log, engine.config.log_max_size)

    def both(stream: str, data: bytes) -> bool | None:
        container_log.write(stream, data)
        return emit(stream, data)

    try:
        code = run.pump(both)
    finally:
        container_log.close()
    if keep:
        if oom_killed(engine, rec):
            write_file(paths.oom, b"", 0o644)
        runtime.delete(cid, force=True)
    write_file(procs.exit_file(paths, cid), str(code).encode(), 0o644)
    return code


def finish_attached(engine, container_id: str, auto_remove: bool) -> None:
    """After run_attached: the exit recorded and the runtime state released (or, with --rm,
    the container removed), unless a concurrent command got there first."""
    with engine.mutation():
        rec = load(engine, container_id)
        if rec is None:
            return
        if auto_remove and not rec.state.restarting:
            remove(engine, container_id, force=True)       # it reaps first
        else:
            reap(engine, rec)


def _startable(engine, name_or_id: str) -> tuple[ContainerRecord, bool]:
    """Under the lock: the container's record, and whether it can be started (False: it runs)."""
    rec = reap(engine, resolve(engine, name_or_id))
    st = current_state(engine, rec)
    if st.running:
        # a start killed between `runc create` and `runc start` left it waiting: finish it
        runc_state = engine.runtime.state(rec.id) or {}
        if runc_state.get("status") == "created":
            engine.runtime.start(rec.id)
        return rec, False
    if st.status in ("creating", "dead", "removing"):
        raise ConflictError(f"container {rec.name} is in state {st.status} and cannot be "
                            f"started", hint=f"remove it: docker-mini rm -f {rec.name}")
    _clear_previous_run(engine, rec.id)
    return rec, True


def _prepare(engine, rec: ContainerRecord) -> None:
    """The rootfs mounted, the network wired and the bundle written, ready for runc."""
    rootfs = engine.overlay.mount_rootfs(engine.layout, rec.id, rec.lowerdirs,
                                         volatile=rec.options.auto_remove)
    netns = network.setup(engine, rec) if uses_network_setup(rec) else None
    build_bundle(engine, rec, rootfs, netns)


def _mark_running(engine, rec: ContainerRecord, pid: int, monitor_pid: int, token: str,
                  by_policy: bool, monitor: str = "conmon") -> None:
    """The record says running. monitor: "conmon", or "cli" for a foreground run's own CLI
    (its pid is then in conmon_pid: what current_state() checks is the monitor's life)."""
    rec.state = RunState(
        status="running", pid=pid, pid_start=engine.processes.process_start_time(pid),
        conmon_pid=monitor_pid, monitor=monitor, started_at=now_iso(), token=token,
        # as Docker: a start by hand gives on-failure:N its N tries again
        restart_count=rec.state.restart_count if by_policy else 0)
    save(engine, rec)


def _clear_previous_run(engine, cid: str) -> None:
    """runc state and monitor an earlier run left (a start killed half-way, a crash): removed,
    and its conmon given time to record that exit, so a late exit file cannot pass for the new
    run's. (Not time to exit: its exit command may be waiting for the lock we hold.)"""
    procs = engine.processes
    paths = monitor_paths(engine, cid)
    old_conmon = procs.read_int(paths.conmon_pidfile) or 0
    engine.runtime.delete(cid, force=True)
    if old_conmon and procs.pid_alive(old_conmon):
        try:
            ours = cid.encode() in Path(f"/proc/{old_conmon}/cmdline").read_bytes()
        except OSError:
            ours = False
        exit_path = procs.exit_file(paths, cid)
        deadline = time.monotonic() + 5.0
        while (ours and procs.pid_alive(old_conmon) and not Path(exit_path).exists()
               and time.monotonic() < deadline):
            time.sleep(0.01)


def _abort_start(engine, rec: ContainerRecord, error: BaseException) -> None:
    """A start that failed leaves the container as Docker does: not running, error recorded."""
    code = 127 if isinstance(error, CommandNotFound) else 126 if isinstance(error, CommandNotExecutable) else 128
    message = str(error.message) if isinstance(error, DockerMiniError) else str(error)
    st = rec.state
    try:
        if st.running and st.pid:
            engine.processes.signal_pid(st.pid, 9, st.pid_start)
            wait_exit_file(engine, rec, 5.0)
    except Exception as e:
        log.debug("killing the failed start of %s: %s", rec.short_id, e)
    try:
        release_runtime(engine, rec)
    except Exception as e:
        log.debug("releasing the failed start of %s: %s", rec.short_id, e)
    ran_before = bool(st.started_at and st.finished_at)
    rec.state = dataclasses.replace(st, status="exited" if ran_before else "created", pid=0,
                                    exit_code=code, error=message,
                                    started_at=st.started_at if ran_before else None)
    try:
        save(engine, rec)
    except Exception as e:
        log.debug("recording the failed start of %s: %s", rec.short_id, e)


def stop(engine, name_or_id: str, timeout: int | None = None) -> ContainerRecord:
    """The stop signal (image StopSignal or SIGTERM), `timeout` seconds (default the container's
    --stop-timeout or 10), then SIGKILL; releases runtime state, network and mount."""
    with engine.mutation():
        rec = reap(engine, resolve(engine, name_or_id))
        running = current_state(engine, rec).running
        if rec.state.status in ("running", "exited"):
            rec.state.manually_stopped = True     # also holds back a pending policy restart
            save(engine, rec)
        if not running:
            return rec
    # an --rm container is removed by its exit command, which must not leave that to us
    with StopClaim(container_dir(engine, rec.id)) if not rec.options.auto_remove else contextlib.nullcontext():
        return _stop_running(engine, rec, timeout)


def _stop_running(engine, rec: ContainerRecord, timeout: int | None) -> ContainerRecord:
    if timeout is None:
        timeout = rec.options.stop_timeout
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
    sig = parse_signal(rec.config.stop_signal or "SIGTERM")
    if timeout != 0:
        send_signal(engine, rec, sig)
        code = wait_exit_file(engine, rec, None if timeout < 0 else float(timeout))
    else:
        code = None
    if code is None:
        send_signal(engine, rec, 9)
        if wait_exit_file(engine, rec, KILL_WAIT) is None:
            raise ContainerRuntimeError(f"container {rec.name} did not exit after SIGKILL")
    with engine.mutation():
        rec = reap(engine, load(engine, rec.id) or rec)
        removed_if_orphaned(engine, rec)
        return rec


def kill(engine, name_or_id: str, signal: str = "KILL") -> None:
    sig = parse_signal(signal)
    with engine.mutation():
        rec = resolve(engine, name_or_id)
        if not current_state(engine, rec).running:
            raise ContainerNotRunning(f"Cannot kill container: {name_or_id}: Container {rec.id} is not running")
        # as Docker: a kill that ends the container (SIGKILL, its stop signal, or any signal when
        # it configures none) is not undone by the restart policy; `kill -s HUP nginx` reloads
        configured = rec.config.stop_signal
        if sig == 9 or not configured or sig == parse_signal(configured):
            rec.state.manually_stopped = True
            save(engine, rec)
    if not send_signal(engine, rec, sig):
        raise ContainerNotRunning(f"Cannot kill container: {name_or_id}: Container {rec.id} is not running")


def restart(engine, name_or_id: str, timeout: int | None = None) -> ContainerRecord:
    with engine.mutation():
        rec = resolve(engine, name_or_id)
        if rec.state.running:
            rec.state.restarting = True      # the exit it causes is no --rm removal
            save(engine, rec)
    stop(engine, rec.id, timeout)
    return start(engine, rec.id)


def wait(engine, name_or_id: str) -> int:
    """Block until the container is not running; its exit code."""
    rec = resolve(engine, name_or_id)
    code = None
    if current_state(engine, rec).running:
        code = wait_exit_file(engine, rec, None)
    with engine.mutation():
        current = load(engine, rec.id)
        if current is None:             # removed meanwhile (--rm): the code we saw is the answer
            return int(code if code is not None else current_state(engine, rec).exit_code or 0)
        rec = reap(engine, current)
    return int(current_state(engine, rec).exit_code or 0)
