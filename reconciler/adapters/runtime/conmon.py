"""Starting conmon and reading what it reports: the part containers (Runtime.create) and exec
sessions (exec_session.py) share. Facts about conmon: /work/notes/conmon.md.

conmon learns its pipes from its environment, each variable naming an fd it inherits:
    _OCI_SYNCPIPE    it writes one JSON line per message: {"data": PID} once runc created or
                     exec'd the process, {"data": -1, "message": runc's text} when that failed;
                     an exec session adds {"data": EXIT_CODE} when its process ends
    _OCI_STARTPIPE   it waits for a byte here before it forks (an exec session with
                     --exec-attach waits for a second one before it runs runc)
    _OCI_ATTACHPIPE  an exec session with --exec-attach says here that its attach socket exists

"""

from __future__ import annotations

import json
import os
import select
import subprocess

from reconciler.core.errors import ContainerRuntimeError


def launch(args: list[str | os.PathLike], cwd: str | os.PathLike, fds: dict[str, int], *,
           error: type[ContainerRuntimeError] = ContainerRuntimeError) -> None:
    """Run conmon (args) in its own session with each of fds passed under its variable's name,
    and wait until it has daemonized: the process started here exits once the monitor runs on
    by itself. fds are closed here in any case (conmon has its copies). Raises error with
    conmon's stderr when it could not run or failed."""
    env = {**os.environ, **{name: str(fd) for name, fd in fds.items()}}
    env.pop("NOTIFY_SOCKET", None)
    try:
        try:
            proc = subprocess.Popen(args, cwd=cwd, env=env, pass_fds=tuple(fds.values()),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise error(f"cannot run conmon: {e}") from None
    finally:
        for fd in fds.values():
            os.close(fd)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise error(f"conmon failed: {err.decode(errors='replace').strip()}")


class SyncPipe:
    """Our end of conmon's sync pipe: its messages one at a time (two may come in one read).
    Problems raise error (ContainerRuntimeError or a subclass the caller tells apart)."""

    def __init__(self, fd: int, error: type[ContainerRuntimeError] = ContainerRuntimeError):
        self.fd: int | None = fd
        self.error = error
        self._buf = b""

    def next_message(self, timeout: float | None) -> dict | None:
        """The next message, or None once conmon closed the pipe without one (it ended).
        timeout: seconds to wait for it, None to wait as long as it takes."""
        while b"\n" not in self._buf:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                raise self.error(f"conmon did not report within {timeout:.0f}s")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        line = line.strip()
        if not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            raise self.error(f"conmon sent an unreadable message: {line[:200]!r}") from None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
