"""runc and conmon: create, start, signal, delete and update containers; read their state.

One conmon per container watches it: it runs `runc create` for us, keeps the container's stdio
(log file, attach socket, terminal), records the exit status in the exit file and survives the
CLI in its own session. The CLI learns the outcome of `runc create` over conmon's sync pipe,
then runs `runc start`. runc keeps its state under our own --root.

Files in the container directory (the bundle):
    config.json       the OCI config                 conmon.pid   conmon's pid
    pidfile           the container's init pid       exit         exit status ("137"), by conmon
    ctr.log           k8s-file log (conmon)          oom          created by conmon on an OOM event
    attach            conmon's attach socket (SEQPACKET; first byte of each message: 2 stdout,
                      3 stderr; what a client writes goes to the container's stdin)
    ctl               fifo: "1 HEIGHT WIDTH\\n" resizes the terminal, "2 0 0\\n" reopens the log
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal as _signal
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from reconciler.core.errors import (CommandNotExecutable, CommandNotFound, ContainerNotRunning,
                                    RuntimeError_)

SUN_PATH_MAX = 107
SYNC_TIMEOUT = 120.0


@dataclass(frozen=True)
class MonitorPaths:
    bundle: Path

    @property
    def config(self) -> Path:
        return self.bundle / "config.json"

    @property
    def pidfile(self) -> Path:
        return self.bundle / "pidfile"

    @property
    def conmon_pidfile(self) -> Path:
        return self.bundle / "conmon.pid"

    @property
    def log(self) -> Path:
        return self.bundle / "ctr.log"

    @property
    def exit_dir(self) -> Path:
        return self.bundle / "exits"

    @property
    def oom(self) -> Path:
        return self.bundle / "oom"

    @property
    def ctl(self) -> Path:
        return self.bundle / "ctl"


def exit_file(paths: MonitorPaths, container_id: str) -> Path:
    return paths.exit_dir / container_id


def _which(name: str, what: str) -> str:
    import shutil
    path = name if "/" in name else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError_(f"{what} {name!r} not found or not executable",
                            hint=f"install it or set the {what!r} key in the configuration")
    return os.path.abspath(path)


def classify_create_error(message: str) -> RuntimeError_:
    """Docker's exit codes come from runc's error text: 127 not found, 126 cannot execute."""
    m = re.search(r'msg="((?:[^"\\]|\\.)*)"', message)
    text = m.group(1).replace('\\"', '"') if m else message.strip()
    low = text.lower()
    if "executable file not found" in low or "no such file or directory" in low and "exec:" in low:
        return CommandNotFound(text)
    if "exec:" in low and ("permission denied" in low or "is a directory" in low
                           or "exec format error" in low):
        return CommandNotExecutable(text)
    return RuntimeError_(text or "the OCI runtime failed without a message")


class Runtime:
    def __init__(self, runc: str, conmon: str, runc_root: Path, log_max_size: int = 10 << 20):
        self._runc_name, self._conmon_name = runc, conmon
        self.runc_root = Path(runc_root)
        self.log_max_size = log_max_size

    @cached_property
    def runc(self) -> str:
        return _which(self._runc_name, "runtime")

    @cached_property
    def conmon(self) -> str:
        return _which(self._conmon_name, "conmon")

    def _runc(self, *args: str, input: bytes | None = None, check: bool = True):
        import subprocess
        proc = subprocess.run([self.runc, "--root", str(self.runc_root), *args], input=input,
                              capture_output=True)
        if check and proc.returncode != 0:
            raise RuntimeError_(f"runc {args[0]} failed: {_runc_message(proc.stderr)}")
        return proc

    # --- lifecycle -------------------------------------------------------------------------

    def create(self, container_id: str, name: str, paths: MonitorPaths, *, terminal: bool = False,
               stdin: bool = False, leave_stdin_open: bool = False,
               exit_command: list[str] | None = None, socket_dir: Path | None = None) -> int:
        """Start conmon, which runs `runc create`; return the container's init pid.

        Raises CommandNotFound / CommandNotExecutable / RuntimeError_ with runc's message."""
        import subprocess
        self.runc_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.exit_dir.mkdir(exist_ok=True)
        for stale in (paths.pidfile, paths.ctl, paths.bundle / "attach", exit_file(paths, container_id), paths.oom):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        args = [self.conmon, "--api-version", "-c", container_id, "-u", container_id[:12], "-n", name,
                "-r", self.runc, "--runtime-arg", "--root", "--runtime-arg", str(self.runc_root),
                "-b", str(paths.bundle), "-p", str(paths.pidfile), "-P", str(paths.conmon_pidfile),
                "-l", f"k8s-file:{paths.log}", "--log-size-max", str(self.log_max_size),
                "--exit-dir", str(paths.exit_dir), "--persist-dir", str(paths.bundle),
                "--no-sync-log"]
        attach = paths.bundle / "attach"
        if len(str(attach)) <= SUN_PATH_MAX:
            args.append("--full-attach")
        else:
            if socket_dir is None:
                raise RuntimeError_(f"{attach}: path too long for a unix socket; give a socket dir")
            socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            args += ["--socket-dir-path", str(socket_dir)]
        if terminal:
            args.append("-t")
        if stdin:
            args.append("-i")
        if leave_stdin_open:
            args.append("--leave-stdin-open")
        if exit_command:
            args += ["--exit-command", exit_command[0]]
            for a in exit_command[1:]:
                args += ["--exit-command-arg", a]
        r, w = os.pipe()
        try:
            env = {**os.environ, "_OCI_SYNCPIPE": str(w)}
            env.pop("NOTIFY_SOCKET", None)
            try:
                proc = subprocess.Popen(args, cwd=paths.bundle, env=env, pass_fds=(w,),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
            except OSError as e:
                raise RuntimeError_(f"cannot run conmon: {e}") from None
            os.close(w)
            w = -1
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError_(f"conmon failed: {err.decode(errors='replace').strip()}")
            msg = _read_sync(r, SYNC_TIMEOUT)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        if msg is None:
            raise RuntimeError_("conmon exited before reporting the container's pid",
                                hint="see the system journal for conmon's messages")
        pid = int(msg.get("data", -1))
        if pid <= 0:
            raise classify_create_error(str(msg.get("message", "")))
        return pid

    def start(self, container_id: str) -> None:
        proc = self._runc("start", container_id, check=False)
        if proc.returncode != 0:
            raise classify_create_error(proc.stderr.decode(errors="replace"))

    def state(self, container_id: str) -> dict | None:
        """runc's state ({status: created|running|stopped|paused, pid, ...}) or None if unknown."""
        proc = self._runc("state", container_id, check=False)
        if proc.returncode != 0:
            return None
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError:
            return None

    def has_state(self, container_id: str) -> bool:
        return (self.runc_root / container_id / "state.json").exists()

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        args = ["kill"] + (["--all"] if all_processes else []) + [container_id, str(signal)]
        proc = self._runc(*args, check=False)
        if proc.returncode != 0:
            text = _runc_message(proc.stderr)
            if "not running" in text or "does not exist" in text or "process already finished" in text:
                raise ContainerNotRunning(f"container {container_id[:12]} is not running")
            raise RuntimeError_(f"runc kill failed: {text}")

    def delete(self, container_id: str, force: bool = False) -> None:
        if not self.has_state(container_id):
            return
        proc = self._runc("delete", *(["--force"] if force else []), container_id, check=False)
        if proc.returncode != 0:
            text = _runc_message(proc.stderr)
            if "does not exist" in text or "not exist" in text:
                return
            raise RuntimeError_(f"runc delete failed: {text}")

    def update(self, container_id: str, resources: dict) -> None:
        """Apply new linux.resources to a running (or created) container, in place."""
        body = {k: v for k, v in resources.items() if k != "devices"}
        self._runc("update", "--resources", "-", container_id, input=json.dumps(body).encode())


def _runc_message(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip()
    msgs = re.findall(r'msg="((?:[^"\\]|\\.)*)"', text)
    return msgs[-1].replace('\\"', '"') if msgs else text


def _read_sync(fd: int, timeout: float) -> dict | None:
    """The first JSON message conmon writes on the sync pipe, or None at EOF."""
    import select
    buf = b""
    while b"\n" not in buf:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise RuntimeError_(f"conmon did not report within {timeout:.0f}s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    line = buf.split(b"\n", 1)[0].strip()
    if not line:
        return None
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise RuntimeError_(f"conmon sent an unreadable message: {line[:200]!r}") from None


# --- processes -----------------------------------------------------------------------------

def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of pid, or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    if pid <= 0:
        return False
    st = process_start_time(pid)
    return st is not None and (start_time is None or st == start_time)


def signal_pid(pid: int, sig: int, start_time: int | None) -> bool:
    """Signal pid only if it is still the process that started at start_time (pidfd: no reuse race)."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        if not pid_alive(pid, start_time):
            return False
        _signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def read_int(path: Path) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
