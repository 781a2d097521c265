"""Exec sessions through `conmon --exec`: a process run in a running container's namespaces and
cgroup (by `runc exec`), watched by its own conmon, which keeps its stdio (attach socket, terminal)
and reports its pid and exit code over the sync pipe. Facts: /work/notes/conmon.md.

The session directory (conmon's -b) holds process.json, attach, ctl, winsz and exit/<container-id>.

    session = launch(...)          conmon is up; with attach=True the socket exists, runc not run yet
    ... connect to session.dir/attach, resize through session.dir/ctl ...
    pid = session.start()          runc exec ran (ExecFailed with runc's message if it did not)
    code = session.wait()          the process's exit code

Every failure is ExecFailed: the engine reads its message to tell the user what went wrong.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
from pathlib import Path

from reconciler.adapters.runtime.conmon import SyncPipe, launch as launch_conmon
from reconciler.core.errors import ExecFailed

log = logging.getLogger(__name__)
SYNC_TIMEOUT = 60.0


class ExecSession:
    def __init__(self, directory: Path):
        self.dir = directory
        self._sync: SyncPipe | None = None
        self._start_w: int | None = None
        self._attach_r: int | None = None
        self.pid: int | None = None

    @property
    def ctl(self) -> Path:
        return self.dir / "ctl"

    def start(self) -> int:
        """Let conmon run `runc exec`; the process's host pid."""
        if self._start_w is not None:
            with contextlib.suppress(BrokenPipeError):     # conmon is gone: the sync pipe says why
                os.write(self._start_w, b"0")
            self._close_start()
        msg = self._sync.next_message(SYNC_TIMEOUT)
        if msg is None:
            raise ExecFailed("conmon exited before reporting the exec'd process")
        pid = int(msg.get("data", -1))
        if pid <= 0:
            raise ExecFailed(str(msg.get("message") or "runc exec failed without a message"))
        self.pid = pid
        return pid

    def wait(self, timeout: float | None = None) -> int:
        """The exit code conmon reports when the process ends (blocks until then)."""
        msg = self._sync.next_message(timeout)
        if msg is None:
            raise ExecFailed("conmon exited without reporting the exit code")
        return int(msg.get("data", -1))

    def abort(self) -> None:
        """Before start(): stop conmon, so the command never runs (its runc child dies with it:
        conmon sets PDEATHSIG). Closing the start pipe alone would let it run unattached."""
        if self.pid is not None:
            return
        try:
            pid = int((self.dir / "conmon.pid").read_text())
        except (OSError, ValueError) as e:
            log.debug("exec session %s: no conmon pid to stop (%s)", self.dir.name, e)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
        self._close_start()
        if self._attach_r is not None:
            os.close(self._attach_r)
            self._attach_r = None

    def _close_start(self) -> None:
        if self._start_w is not None:
            os.close(self._start_w)
            self._start_w = None


def launch(*, conmon: str | os.PathLike, runc: str | os.PathLike, runc_root: str | os.PathLike, container_id: str, exec_id: str,
           directory: Path, process: dict, terminal: bool, stdin: bool, attach: bool) -> ExecSession:
    """Start conmon for one exec session. With attach=True it waits until the attach socket is
    ready and holds `runc exec` back until ExecSession.start()."""
    directory.mkdir(parents=True, mode=0o700)
    (directory / "exit").mkdir()
    (directory / "process.json").write_text(json.dumps(process))
    args = [conmon, "--api-version", "-c", container_id, "-u", exec_id, "-n", exec_id,
            "-r", runc, "--runtime-arg", "--root", "--runtime-arg", str(runc_root),
            "-b", str(directory), "-p", str(directory / "pid"), "-P", str(directory / "conmon.pid"),
            "-l", "none",
            "--exit-dir", str(directory / "exit"), "--full-attach",
            "-e", "--exec-process-spec", str(directory / "process.json")]
    args += [flag for flag, on in (("-t", terminal), ("-i", stdin), ("--exec-attach", attach)) if on]
    session = ExecSession(directory)
    fds: dict[str, int] = {}        # conmon's ends of the pipes, until launch_conmon has them
    try:
        sync_r, fds["_OCI_SYNCPIPE"] = os.pipe2(os.O_CLOEXEC)
        session._sync = SyncPipe(sync_r, ExecFailed)
        fds["_OCI_STARTPIPE"], session._start_w = os.pipe2(os.O_CLOEXEC)
        if attach:
            session._attach_r, fds["_OCI_ATTACHPIPE"] = os.pipe2(os.O_CLOEXEC)
        # conmon blocks on the start pipe before it forks; this first byte (waiting in the pipe
        # for it) lets it go on. Without --exec-attach it reads no second one.
        os.write(session._start_w, b"0")
        if not attach:
            session._close_start()
        passed, fds = fds, {}
        launch_conmon(args, str(directory), passed, error=ExecFailed)
        if attach:
            ready, _, _ = select.select([session._attach_r], [], [], SYNC_TIMEOUT)
            if not ready or not os.read(session._attach_r, 4096):
                # conmon died before its attach socket existed; the sync pipe says why
                msg = session._sync.next_message(1.0)
                raise ExecFailed(str((msg or {}).get("message") or "conmon exited before attaching"))
        return session
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        session.close()
        raise
