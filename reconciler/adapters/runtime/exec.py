"""Exec sessions through `conmon --exec`: a process run in a running container's namespaces and
cgroup (by `runc exec`), watched by its own conmon, which keeps its stdio (attach socket, terminal)
and reports its pid and exit code over the sync pipe. Facts: /work/notes/conmon.md.

The session directory (conmon's -b) holds process.json, attach, ctl, winsz and exit/<container-id>.

    session = launch(...)          conmon is up; with attach=True the socket exists, runc not run yet
    ... connect to session.dir/attach, resize through session.dir/ctl ...
    pid = session.start()          runc exec ran (ExecFailed with runc's message if it did not)
    code = session.wait()          the process's exit code
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import select
import subprocess
from pathlib import Path

SYNC_TIMEOUT = 60.0


class ExecFailed(Exception):
    """conmon or `runc exec` failed; .message is runc's (or conmon's) text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ExecSession:
    def __init__(self, directory: Path, sync_r: int, start_w: int | None, attach_r: int | None):
        self.dir = directory
        self._sync_r = sync_r
        self._start_w = start_w
        self._attach_r = attach_r
        self._buf = b""
        self.pid: int | None = None

    @property
    def ctl(self) -> Path:
        return self.dir / "ctl"

    def start(self) -> int:
        """Let conmon run `runc exec`; the process's host pid."""
        if self._start_w is not None:
            try:
                os.write(self._start_w, b"0")
            except BrokenPipeError:
                pass
            os.close(self._start_w)
            self._start_w = None
        msg = self._next_message()
        if msg is None:
            raise ExecFailed("conmon exited before reporting the exec'd process")
        pid = int(msg.get("data", -1))
        if pid <= 0:
            raise ExecFailed(str(msg.get("message") or "runc exec failed without a message"))
        self.pid = pid
        return pid

    def wait(self, timeout: float | None = None) -> int:
        """The exit code conmon reports when the process ends (blocks until then)."""
        msg = self._next_message(timeout)
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
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        for name in ("_sync_r", "_start_w", "_attach_r"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def _next_message(self, timeout: float | None = SYNC_TIMEOUT) -> dict | None:
        while b"\n" not in self._buf:
            ready, _, _ = select.select([self._sync_r], [], [], timeout)
            if not ready:
                raise ExecFailed(f"conmon did not report within {timeout:.0f}s")
            chunk = os.read(self._sync_r, 65536)
            if not chunk:
                break
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        if not line.strip():
            return None
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise ExecFailed(f"conmon sent an unreadable message: {line[:200]!r}") from None


def launch(*, conmon: str, runc: str, runc_root: Path, container_id: str, exec_id: str,
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
    fds: list[int] = []
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    start_r, start_w = os.pipe2(os.O_CLOEXEC)
    fds += [sync_w, start_r]
    env = {**os.environ, "_OCI_SYNCPIPE": str(sync_w), "_OCI_STARTPIPE": str(start_r)}
    attach_r = None
    if attach:
        attach_r, attach_w = os.pipe2(os.O_CLOEXEC)
        fds.append(attach_w)
        env["_OCI_ATTACHPIPE"] = str(attach_w)
    env.pop("NOTIFY_SOCKET", None)
    session = ExecSession(directory, sync_r, start_w, attach_r)
    try:
        try:
            proc = subprocess.Popen(args, cwd=directory, env=env, pass_fds=tuple(fds),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise ExecFailed(f"cannot run conmon: {e}") from None
        for fd in fds:
            os.close(fd)
        fds = []
        # conmon blocks on the start pipe before it forks; this first byte lets it go on.
        os.write(start_w, b"0")
        if not attach:
            os.close(start_w)
            session._start_w = None
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise ExecFailed(f"conmon failed: {err.decode(errors='replace').strip()}")
        if attach:
            ready, _, _ = select.select([attach_r], [], [], SYNC_TIMEOUT)
            if not ready or not os.read(attach_r, 4096):
                # conmon died before its attach socket existed; the sync pipe says why
                msg = session._next_message(1.0)
                raise ExecFailed(str((msg or {}).get("message") or "conmon exited before attaching"))
        return session
    except BaseException:
        for fd in fds:
            os.close(fd)
        session.close()
        raise
