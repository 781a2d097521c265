"""Removing a container and everything it owns: runc state, cgroup, network lease, rw layer,
bundle and logs."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

from reconciler.core.errors import ConflictError, ContainerRuntimeError, DockerMiniError, StorageError
from reconciler.engine import network
from reconciler.engine.containers import names
from reconciler.engine.containers.liveness import KILL_WAIT, current_state, send_signal, wait_exit_file
from reconciler.engine.containers.reaping import network_teardown, reap
from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine.containers.stop_claim import StopClaim
from reconciler.engine.containers.sockets import socket_dir
from reconciler.engine.containers.store import container_dir, resolve, save

log = logging.getLogger(__name__)


def remove(engine, name_or_id: str, force: bool = False) -> None:
    """Remove a container and everything it owns: runc state, mount, rw layer, network lease,
    bundle, logs. A running one is refused unless force (then killed first)."""
    with contextlib.ExitStack() as claims:
        _remove(engine, name_or_id, force, claims)


def _remove(engine, name_or_id: str, force: bool, claims: contextlib.ExitStack) -> None:
    killed = None
    with engine.mutation():
        rec = resolve(engine, name_or_id)
        rec = reap(engine, rec, save_it=False)          # saved below, as "removing"
        st = current_state(engine, rec)
        if st.running:
            if not force:
                raise ConflictError(f"You cannot remove a running container {rec.id}. Stop the "
                                    f"container before attempting removal or force remove")
            claims.enter_context(StopClaim(container_dir(engine, rec.id)))   # until conmon is gone
            send_signal(engine, rec, 9)
            if wait_exit_file(engine, rec, KILL_WAIT) is None:
                raise ContainerRuntimeError(f"container {rec.name} did not exit after SIGKILL")
            killed = dataclasses.replace(rec.state)
            rec = reap(engine, rec)
        elif st.status == "creating":
            raise ConflictError(f"container {rec.name} is still being created")
        rec.state.status = "removing"
        try:
            save(engine, rec)
        except FileNotFoundError:
            pass
        destroy(engine, rec)
    if killed is not None:
        # conmon lives on until its exit command is done (quick: it finds our stop claim)
        _wait_conmon_gone(engine, killed)


def removed_if_orphaned(engine, rec: ContainerRecord) -> bool:
    """Under the lock: an ended --rm container whose foreground CLI (its monitor, which removes
    it) was killed is removed now, as Docker's daemon would have at its end. True if it was."""
    st = rec.state
    if not (rec.options.auto_remove and st.monitor == "cli"
            and st.status in ("running", "exited") and not st.restarting
            and not engine.processes.pid_alive(st.conmon_pid)):
        return False
    if st.running and current_state(engine, rec).running:
        return False                                # it runs on: removed once it has ended
    try:
        remove(engine, rec.id, force=True)
    except DockerMiniError as e:
        log.debug("orphaned --rm container %s not removed: %s", rec.short_id, e)
        return False        # not this command's business to fail for: `rm` will say why
    return True


def _wait_conmon_gone(engine, state, timeout: float = 5.0) -> None:
    pid = state.conmon_pid
    deadline = time.monotonic() + timeout
    while pid and engine.processes.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.005)


def destroy(engine, rec: ContainerRecord) -> None:
    """Everything of the container's released and deleted, its record last."""
    cid = rec.id
    overlay = engine.overlay
    errors = []
    for step in (lambda: engine.runtime.delete(cid, force=True),
                 lambda: _remove_leftover_cgroup(engine, cid),
                 lambda: network_teardown(engine, rec),
                 lambda: network.release(engine, rec),
                 lambda: overlay.remove_rw_layer(engine.layout, cid)):
        try:
            step()
        except DockerMiniError as e:
            errors.append(e)
    sock_dir = socket_dir(engine)
    link = sock_dir / cid[:12]
    try:
        if link.is_symlink():
            link.unlink()
    except OSError as e:
        log.debug("attach socket link %s not removed: %s", link, e)
    if not sock_dir.is_relative_to(engine.layout.root):
        try:
            sock_dir.rmdir()                   # /run/docker-mini/<hash>, once no container uses it
        except OSError:
            pass                               # other containers still use it
    if errors:
        raise errors[0]
    containers_dir = engine.layout.containers_dir
    # rename first, so a crash mid-delete never leaves a half-removed record under its id
    try:
        container_dir(engine, cid).rename(containers_dir / f".rm-{cid}")
    except FileNotFoundError:
        pass
    if rec.name:
        names.release(engine, rec.name, cid)        # after the record: see names
    try:
        stale = [p for p in containers_dir.iterdir() if p.name.startswith(".rm-")]
    except FileNotFoundError:
        stale = []
    for path in stale:                      # this one, and what a killed rm left
        try:
            overlay.remove_tree(path)
        except OSError as e:
            log.debug("removed container's directory %s not deleted: %s", path, e)


def _remove_leftover_cgroup(engine, cid: str) -> None:
    from reconciler.core.ociconfig import cgroups_path
    if not engine.cgroups.remove_leftover(cgroups_path(cid)):
        raise StorageError(f"the cgroup of container {cid[:12]} cannot be removed: it still has "
                           f"processes", hint="see /sys/fs/cgroup/*/docker-mini/" + cid)
