"""A foreground `run` without conmon: `runc run` with the CLI as the container's monitor, and
the container's log written as conmon would write it."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from reconciler.adapters.runtime.bundle import MonitorPaths, read_int
from reconciler.adapters.runtime.runc import SYNC_TIMEOUT, classify_create_error
from reconciler.core.errors import ContainerRuntimeError
from reconciler.core.timestamps import rfc3339


class AttachedRun:
    """One `runc run` process creating, starting, awaiting and deleting a container whose
    monitor is the CLI in front of it (a foreground `run` without -d, -i or -t): no conmon,
    `runc start` or `runc delete` to spawn. runc runs in its own session, so the terminal's
    signals reach only the CLI, which forwards them (signal()); runc passes them on to the
    container. runc's own messages share the container's stderr: output is read only once the
    container has started, so a failed start shows as the error started() raises, not twice."""

    def __init__(self, args: list[str], paths: MonitorPaths):
        self.paths = paths
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            # its own session: the terminal's signals reach only the CLI, which forwards them
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out_w,
                                         stderr=err_w, start_new_session=True)
        except OSError as e:        # runc missing, or no memory or processes left to fork
            os.close(out_r)
            os.close(err_r)
            raise ContainerRuntimeError(f"cannot run {args[0]}: {e.strerror}") from None
        finally:
            os.close(out_w)
            os.close(err_w)
        self.pid = self.proc.pid
        self.fds = {out_r: "stdout", err_r: "stderr"}
        self.status: int | None = None

    def started(self, timeout: float = SYNC_TIMEOUT) -> int:
        """The container's pid once its process runs (runc writes the pid file after the exec),
        even if it has ended already. Raises CommandNotFound / CommandNotExecutable /
        ContainerRuntimeError with runc's message when the start failed."""
        deadline = time.monotonic() + timeout
        delay = 0.0002
        while True:
            pid = read_int(self.paths.pidfile)
            if pid:
                return pid
            if self.status is None:
                code = self.proc.poll()
                if code is not None:
                    self.status = _exit_code(code)
                    continue        # the pid file may have been written just before the exit
            else:
                said = _runc_log_error(self.paths.runc_log) or self._stderr_tail()
                self.close()
                raise classify_create_error(said or f"runc exited with status {self.status}")
            if time.monotonic() > deadline:
                self.signal(signal.SIGKILL)
                raise ContainerRuntimeError(f"runc did not start the container within {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.0005)    # runc takes ~30 ms: do not oversleep its end

    def _stderr_tail(self) -> str:
        """What the ended process left on its stderr (its last line): only read after a failed
        start, when runc could not even log (it could not be executed, say)."""
        fd = next(fd for fd, stream in self.fds.items() if stream == "stderr")
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
        lines = data.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def pump(self, emit) -> int:
        """Pass the container's output to emit(stream, data) until it ends; its exit code
        (128+N for a signal, as Docker reports it). When emit returns False that stream is
        closed: the container's next write there fails as it would into a closed pipe."""
        poller = select.poll()
        for fd in self.fds:
            poller.register(fd, select.POLLIN)
        while self.fds:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, _ in events:
                data = os.read(fd, 65536)
                if not data or emit(self.fds[fd], data) is False:
                    poller.unregister(fd)
                    os.close(fd)
                    del self.fds[fd]
        return self.wait()

    def wait(self) -> int:
        if self.status is None:
            self.status = _exit_code(self.proc.wait())
        return self.status

    def signal(self, sig: int) -> None:
        if self.status is None:
            self.proc.send_signal(sig)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = {}
        self.wait()

    def abandon(self) -> None:
        """The start is being undone: the container's process (if it began) is killed."""
        pid = read_int(self.paths.pidfile)
        if pid and self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.close()


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode   # killed by signal N: 128+N, as shells say


class ContainerLog:
    """The container's log in conmon's k8s-file format ("<RFC 3339 time> <stream> <F|P> <text>",
    P marking a partial line), written as conmon writes it: capped at max_size bytes, past which
    the file starts over (renamed into place, as conmon does: readers following it reopen)."""

    def __init__(self, path: str | os.PathLike, max_size: int):
        self.path, self.max_size = Path(path), max_size
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self.fd).st_size
        self.error: OSError | None = None      # the write that failed, after which logging stopped

    def write(self, stream: str, data: bytes) -> None:
        if self.error is not None:
            return
        stamp = f"{rfc3339(time.time_ns(), utc='+00:00')} {stream} ".encode()
        lines = data.split(b"\n")
        out = [stamp + b"F " + line + b"\n" for line in lines[:-1]]
        if lines[-1]:
            out.append(stamp + b"P " + lines[-1] + b"\n")
        try:
            batch: list[bytes] = []
            pending = 0
            for entry in out:       # line by line: one read may hold more than the whole cap
                if self.max_size > 0 and self.size + pending + len(entry) > self.max_size:
                    self._write(batch, pending)
                    batch, pending = [], 0
                    self._start_over()
                batch.append(entry)
                pending += len(entry)
            self._write(batch, pending)
        except OSError as e:
            # a full disk must not cut the container off from its terminal: stop logging only
            self.error = e

    def _write(self, batch: list[bytes], size: int) -> None:
        if batch:
            os.write(self.fd, b"".join(batch))
            self.size += size

    def _start_over(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.replace(tmp, self.path)
        os.close(self.fd)
        self.fd, self.size = fd, 0

    def close(self) -> None:
        os.close(self.fd)


def _runc_log_error(path: Path) -> str | None:
    """The last error runc logged (--log-format json), or None."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", ""))
    return None
