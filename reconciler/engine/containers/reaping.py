"""Reaping a container whose process ended: its exit recorded and its runtime state, network
wiring and rootfs mount released. Apart from liveness (which only looks) so that the commands
that only look (ps, inspect, logs) do not load networking.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reconciler.core.ociconfig import cgroups_path
from reconciler.engine import network
from reconciler.engine.containers.liveness import current_state
from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine.containers.store import monitor_paths, save


def oom_killed(engine, rec: ContainerRecord) -> bool:
    paths = monitor_paths(engine, rec.id)
    if Path(paths.oom).exists():
        return True
    procs = engine.processes
    if rec.state.monitor == "cli":
        if Path(procs.exit_file(paths, rec.id)).exists():
            return False      # the foreground CLI read the cgroup before runc removed it
    try:
        cgroups = engine.cgroups
        state = cgroups.read_oom(cgroups.find_cgroup(cgroups_path(rec.id)))
        return bool(state and state.oom_killed)
    except (OSError, ValueError):
        return False


def reap(engine, rec: ContainerRecord, save_it: bool = True) -> ContainerRecord:
    """Under the lock: a container whose process ended gets its exit recorded and its runtime
    state, network and rootfs mount released. Idempotent; returns the (updated) record.
    save_it=False: the caller saves the record next (a crash before that only repeats the reap)."""
    if not rec.state.running:
        return rec
    seen = current_state(engine, rec)
    if seen.running:
        return rec
    seen.oom_killed = seen.oom_killed or oom_killed(engine, rec)
    release_runtime(engine, rec)
    rec.state = dataclasses.replace(seen, status="exited", pid=0)
    if save_it:
        save(engine, rec)
    return rec


def release_runtime(engine, rec: ContainerRecord) -> None:
    """runc state, network wiring and the rootfs mount of a stopped container (best effort
    where a half-done earlier attempt may already have removed parts)."""
    cid = rec.id
    engine.runtime.delete(cid, force=True)
    network_teardown(engine, rec)
    engine.overlay.unmount_rootfs(engine.layout, cid)


def uses_network_setup(rec: ContainerRecord) -> bool:
    # --network none needs no host-side wiring: runc makes a fresh namespace with lo only
    return rec.options.network != "none"


def network_teardown(engine, rec: ContainerRecord) -> None:
    if uses_network_setup(rec):
        network.teardown(engine, rec)
