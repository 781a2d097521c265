"""After a container's process ends (conmon's exit command, `container-cleanup`): reap it, then
remove it (--rm) or start it again (its restart policy)."""

from __future__ import annotations

import fcntl
import logging
import os
import time

from reconciler.core import restart
from reconciler.core.errors import DockerMiniError
from reconciler.engine.containers.lifecycle import start
from reconciler.engine.containers.reaping import reap
from reconciler.engine.containers.removal import remove
from reconciler.engine.containers.stop_claim import lock_held
from reconciler.engine.containers.store import container_dir, load, save

log = logging.getLogger(__name__)

FOREGROUND_LOCK = "foreground.lock"


class ForegroundClaim:
    """Held (`with ForegroundClaim(engine, cid):`) by a CLI that runs a --rm container in the
    foreground: while it is attached, it removes the container itself once it has its exit
    code; if it detaches (or dies), the exit command removes the container when it ends, as
    Docker's daemon would."""

    def __init__(self, engine, container_id: str):
        self.path = container_dir(engine, container_id) / FOREGROUND_LOCK

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def foreground_attached(engine, container_id: str) -> bool:
    """Whether a CLI holds the container's ForegroundClaim."""
    return lock_held(container_dir(engine, container_id) / FOREGROUND_LOCK, missing=FileNotFoundError)


def cleanup(engine, container_id: str, token: str | None = None) -> None:
    """The container's process ended: reap it, then --rm or the restart policy."""
    if not container_dir(engine, container_id).is_dir():
        return                     # removed meanwhile (and maybe its whole root: do not recreate it)
    with engine.mutation():
        rec = load(engine, container_id)
        if rec is None:
            return
        if token is not None and rec.state.token != token:
            return                                  # a later run already replaced this one
        rec = reap(engine, rec)
        st = rec.state
        if st.status != "exited":
            return
        if st.restarting:
            return                                  # restart() starts it again itself
        if rec.options.auto_remove:
            if not foreground_attached(engine, container_id):
                remove(engine, container_id, force=True)
            return
        policy = restart.RestartPolicy.parse(rec.options.restart)
        if not restart.should_restart(policy, st.exit_code, st.restart_count, st.manually_stopped):
            return
        st.restart_count += 1
        save(engine, rec)
    time.sleep(restart.exit_delay(st.restart_count))
    try:
        with engine.mutation():
            current = load(engine, container_id)
            if current and current.state.token == st.token and not current.state.manually_stopped:
                start(engine, container_id, by_policy=True)
    except DockerMiniError as e:
        log.debug("restart of %s by its policy failed: %s", container_id[:12], e)
