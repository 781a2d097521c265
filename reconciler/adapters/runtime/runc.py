"""runc through conmon: create, start, signal, delete and update containers; read their state.

One conmon per container watches it: it runs `runc create` for us, keeps the container's stdio
(log file, attach socket, terminal), records the exit status in the exit file and survives the
CLI in its own session. The CLI learns the outcome of `runc create` over conmon's sync pipe,
then runs `runc start`. runc keeps its state under our own --root.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.adapters.runtime.bundle import SUN_PATH_MAX, MonitorPaths, exit_file
from reconciler.adapters.runtime.conmon import SyncPipe, launch as launch_conmon
from reconciler.core.errors import CommandNotExecutable, CommandNotFound, ContainerRuntimeError

if TYPE_CHECKING:
    from reconciler.adapters.runtime.exec_session import ExecSession
    from reconciler.adapters.runtime.foreground import AttachedRun

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 120.0


def _which(name: str, what: str) -> Path:
    path = name if "/" in name else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        raise ContainerRuntimeError(f"{what} {name!r} not found or not executable",
                                    hint=f"install it or set the {what!r} key in the configuration")
    return Path(path).absolute()


def classify_create_error(message: str) -> ContainerRuntimeError:
    """Docker's exit codes come from runc's error text: 127 not found, 126 cannot execute."""
    msgs = _runc_messages(message)
    text = msgs[0] if msgs else message.strip()
    low = text.lower()
    if "executable file not found" in low or "no such file or directory" in low and "exec:" in low:
        return CommandNotFound(text)
    if "exec:" in low and ("permission denied" in low or "is a directory" in low
                           or "exec format error" in low):
        return CommandNotExecutable(text)
    return ContainerRuntimeError(text or "the OCI runtime failed without a message")


class Runtime:
    def __init__(self, runc: str, conmon: str, runc_root: str | os.PathLike, log_max_size: int):
        self._runc_name, self._conmon_name = runc, conmon
        self.runc_root = Path(runc_root)
        self.log_max_size = log_max_size
        self._runc_path: Path | None = None
        self._conmon_path: Path | None = None

    @property
    def runc(self) -> Path:
        if self._runc_path is None:
            self._runc_path = _which(self._runc_name, "runtime")
        return self._runc_path

    @property
    def conmon(self) -> Path:
        if self._conmon_path is None:
            self._conmon_path = _which(self._conmon_name, "conmon")
        return self._conmon_path

    def _runc(self, *args: str, input: bytes | None = None, check: bool = True):
        proc = subprocess.run([self.runc, "--root", self.runc_root, *args], input=input,
                              capture_output=True)
        if check and proc.returncode != 0:
            raise ContainerRuntimeError(f"runc {args[0]} failed: {_runc_message(proc.stderr)}")
        return proc

    # --- lifecycle -------------------------------------------------------------------------

    def _prepare(self, paths: MonitorPaths, container_id: str, *stale: Path) -> None:
        """The directories a (re)start needs, without what a previous run of it left."""
        self.runc_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.exit_dir.mkdir(parents=True, exist_ok=True)
        for path in (paths.pidfile, exit_file(paths, container_id), paths.oom, *stale):
            path.unlink(missing_ok=True)

    def create(self, container_id: str, name: str, paths: MonitorPaths, *, terminal: bool = False,
               stdin: bool = False, leave_stdin_open: bool = False,
               exit_command: list[str] | None = None,
               socket_dir: str | os.PathLike | None = None) -> int:
        """Start conmon, which runs `runc create`; return the container's init pid.

        Raises CommandNotFound / CommandNotExecutable / ContainerRuntimeError with runc's message."""
        attach = paths.attach
        self._prepare(paths, container_id, paths.ctl, attach)
        args = [self.conmon, "--api-version", "-c", container_id, "-u", container_id[:12], "-n", name,
                "-r", self.runc, "--runtime-arg", "--root", "--runtime-arg", self.runc_root,
                "-b", paths.bundle, "-p", paths.pidfile, "-P", paths.conmon_pidfile,
                "-l", f"k8s-file:{paths.log}", "--log-size-max", str(self.log_max_size),
                "--exit-dir", paths.exit_dir, "--persist-dir", paths.bundle,
                "--no-sync-log"]
        if len(os.fsencode(attach)) <= SUN_PATH_MAX:
            args.append("--full-attach")
        else:
            if socket_dir is None:
                raise ContainerRuntimeError(f"{attach}: path too long for a unix socket; give a socket dir")
            Path(socket_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
            args += ["--socket-dir-path", socket_dir]
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
        r, w = os.pipe2(os.O_CLOEXEC)
        sync = SyncPipe(r)
        try:
            launch_conmon(args, paths.bundle, {"_OCI_SYNCPIPE": w})
            msg = sync.next_message(SYNC_TIMEOUT)
        finally:
            sync.close()
        if msg is None:
            raise ContainerRuntimeError("conmon exited before reporting the container's pid",
                                        hint="see the system journal for conmon's messages")
        pid = int(msg.get("data", -1))
        if pid <= 0:
            raise classify_create_error(str(msg.get("message", "")))
        return pid

    def run_attached(self, container_id: str, paths: MonitorPaths, *, keep: bool = False) -> "AttachedRun":
        """`runc run` of the bundle, this process being the container's monitor: see AttachedRun.
        keep: leave the stopped container (its cgroup: OOM state) for delete() to remove."""
        self._prepare(paths, container_id, paths.runc_log)
        from reconciler.adapters.runtime.foreground import AttachedRun
        args = [self.runc, "--root", self.runc_root, "--log", paths.runc_log,
                "--log-format", "json", "run", "--bundle", paths.bundle,
                "--pid-file", paths.pidfile, *(["--keep"] if keep else []), container_id]
        return AttachedRun([os.fspath(a) for a in args], paths)

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
        except ValueError as e:
            log.debug("runc state %s is not JSON: %s", container_id, e)
            return None

    def has_state(self, container_id: str) -> bool:
        return (self.runc_root / container_id / "state.json").exists()

    def awaiting_start(self, container_id: str) -> bool:
        """runc created the process but `runc start` never ran: runc keeps its exec fifo until
        a start opens it (cheaper than `runc state`, which forks a runc)."""
        return (self.runc_root / container_id / "exec.fifo").exists()

    def delete(self, container_id: str, force: bool = False) -> None:
        if not self.has_state(container_id):
            return
        proc = self._runc("delete", *(["--force"] if force else []), container_id, check=False)
        if proc.returncode != 0:
            text = _runc_message(proc.stderr)
            if "not exist" in text:
                return
            raise ContainerRuntimeError(f"runc delete failed: {text}")

    def update(self, container_id: str, resources: dict) -> None:
        """Apply new linux.resources to a running (or created) container, in place."""
        body = {k: v for k, v in resources.items() if k != "devices"}
        self._runc("update", "--resources", "-", container_id, input=json.dumps(body).encode())

    def exec(self, container_id: str, exec_id: str, directory: str | os.PathLike, process: dict, *,
             terminal: bool, stdin: bool, attach: bool) -> ExecSession:
        """Start an exec session of process in the running container (see exec_session.launch);
        the ExecSession. Raises ExecFailed."""
        from reconciler.adapters.runtime import exec_session
        return exec_session.launch(conmon=self.conmon, runc=self.runc, runc_root=self.runc_root,
                                   container_id=container_id, exec_id=exec_id, directory=Path(directory),
                                   process=process, terminal=terminal, stdin=stdin, attach=attach)


def _runc_message(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip()
    msgs = _runc_messages(text)
    return msgs[-1] if msgs else text


def _runc_messages(text: str) -> list[str]:
    """The msg="..." fields of runc's logfmt lines, unescaped."""
    return [m.replace('\\"', '"') for m in re.findall(r'msg="((?:[^"\\]|\\.)*)"', text)]
