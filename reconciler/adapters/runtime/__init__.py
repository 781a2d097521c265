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

conmon.py starts conmon and reads its sync pipe, for containers and for exec sessions
(exec_session.py: `runc exec` through `conmon --exec`, loaded only by exec).
"""

from __future__ import annotations

import _signal      # signal's constants and functions without the enums signal.py builds
import os

from reconciler.core import jsontext
from reconciler.core.errors import CommandNotExecutable, CommandNotFound, ContainerRuntimeError
from reconciler.core.record import FrozenRecord

SUN_PATH_MAX = 107
SYNC_TIMEOUT = 120.0


class MonitorPaths(FrozenRecord):
    """The files of one container's bundle directory (see the module's docstring), as str."""
    __slots__ = ("bundle",)

    def __init__(self, bundle: str | os.PathLike):
        self._set(os.fspath(bundle))

    @property
    def config(self) -> str:
        return f"{self.bundle}/config.json"

    @property
    def pidfile(self) -> str:
        return f"{self.bundle}/pidfile"

    @property
    def conmon_pidfile(self) -> str:
        return f"{self.bundle}/conmon.pid"

    @property
    def log(self) -> str:
        return f"{self.bundle}/ctr.log"

    @property
    def exit_dir(self) -> str:
        return f"{self.bundle}/exits"

    @property
    def oom(self) -> str:
        return f"{self.bundle}/oom"

    @property
    def ctl(self) -> str:
        return f"{self.bundle}/ctl"

    @property
    def runc_log(self) -> str:
        return f"{self.bundle}/runc.log"


def exit_file(paths: MonitorPaths, container_id: str) -> str:
    return f"{paths.exit_dir}/{container_id}"


def _which(name: str, what: str) -> str:
    path = name if "/" in name else _search_path(name)
    if not path or not os.access(path, os.X_OK):
        raise ContainerRuntimeError(f"{what} {name!r} not found or not executable",
                            hint=f"install it or set the {what!r} key in the configuration")
    return os.path.abspath(path)


def _search_path(name: str) -> str | None:
    """shutil.which without importing shutil (~3 ms here: it loads zlib, bz2 and lzma)."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


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
        self.runc_root = os.fspath(runc_root)
        self.log_max_size = log_max_size
        self._runc_path: str | None = None
        self._conmon_path: str | None = None

    @property
    def runc(self) -> str:
        if self._runc_path is None:
            self._runc_path = _which(self._runc_name, "runtime")
        return self._runc_path

    @property
    def conmon(self) -> str:
        if self._conmon_path is None:
            self._conmon_path = _which(self._conmon_name, "conmon")
        return self._conmon_path

    def _runc(self, *args: str, input: bytes | None = None, check: bool = True):
        import subprocess
        proc = subprocess.run([self.runc, "--root", self.runc_root, *args], input=input,
                              capture_output=True)
        if check and proc.returncode != 0:
            raise ContainerRuntimeError(f"runc {args[0]} failed: {_runc_message(proc.stderr)}")
        return proc

    # --- lifecycle -------------------------------------------------------------------------

    def _prepare(self, paths: MonitorPaths, container_id: str, *stale: str) -> None:
        """The directories a (re)start needs, without what a previous run of it left."""
        os.makedirs(self.runc_root, mode=0o700, exist_ok=True)
        os.makedirs(paths.exit_dir, exist_ok=True)
        for path in (paths.pidfile, exit_file(paths, container_id), paths.oom, *stale):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def create(self, container_id: str, name: str, paths: MonitorPaths, *, terminal: bool = False,
               stdin: bool = False, leave_stdin_open: bool = False,
               exit_command: list[str] | None = None,
               socket_dir: str | os.PathLike | None = None) -> int:
        """Start conmon, which runs `runc create`; return the container's init pid.

        Raises CommandNotFound / CommandNotExecutable / ContainerRuntimeError with runc's message."""
        from reconciler.adapters.runtime.conmon import SyncPipe, launch as launch_conmon
        attach = f"{paths.bundle}/attach"
        self._prepare(paths, container_id, paths.ctl, attach)
        args = [self.conmon, "--api-version", "-c", container_id, "-u", container_id[:12], "-n", name,
                "-r", self.runc, "--runtime-arg", "--root", "--runtime-arg", self.runc_root,
                "-b", paths.bundle, "-p", paths.pidfile, "-P", paths.conmon_pidfile,
                "-l", f"k8s-file:{paths.log}", "--log-size-max", str(self.log_max_size),
                "--exit-dir", paths.exit_dir, "--persist-dir", paths.bundle,
                "--no-sync-log"]
        if len(attach) <= SUN_PATH_MAX:
            args.append("--full-attach")
        else:
            if socket_dir is None:
                raise ContainerRuntimeError(f"{attach}: path too long for a unix socket; give a socket dir")
            socket_dir = os.fspath(socket_dir)
            os.makedirs(socket_dir, mode=0o700, exist_ok=True)
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
        args = [self.runc, "--root", self.runc_root, "--log", paths.runc_log,
                "--log-format", "json", "run", "--bundle", paths.bundle,
                "--pid-file", paths.pidfile, *(["--keep"] if keep else []), container_id]
        return AttachedRun(args, paths)

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
            return jsontext.loads(proc.stdout)
        except ValueError:
            return None

    def has_state(self, container_id: str) -> bool:
        return os.path.exists(f"{self.runc_root}/{container_id}/state.json")

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
        self._runc("update", "--resources", "-", container_id, input=jsontext.dumps(body).encode())

    def exec(self, container_id: str, exec_id: str, directory, process: dict, *, terminal: bool,
             stdin: bool, attach: bool):
        """Start an exec session of process in the running container (see exec_session.launch);
        the ExecSession. Raises ExecFailed."""
        from reconciler.adapters.runtime import exec_session
        return exec_session.launch(conmon=self.conmon, runc=self.runc, runc_root=self.runc_root,
                                   container_id=container_id, exec_id=exec_id, directory=directory,
                                   process=process, terminal=terminal, stdin=stdin, attach=attach)


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
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.pid = _spawn(args, env, (null, out_w, err_w))
        except OSError as e:        # fork itself failed (no memory, too many processes)
            os.close(out_r)
            os.close(err_r)
            raise ContainerRuntimeError(f"cannot run {args[0]}: {e.strerror}") from None
        finally:
            for fd in (out_w, err_w, null):
                os.close(fd)
        self.fds = {out_r: "stdout", err_r: "stderr"}
        self.status: int | None = None

    def started(self, timeout: float = SYNC_TIMEOUT) -> int:
        """The container's pid once its process runs (runc writes the pid file after the exec),
        even if it has ended already. Raises CommandNotFound / CommandNotExecutable /
        ContainerRuntimeError with runc's message when the start failed."""
        import time
        deadline = time.monotonic() + timeout
        delay = 0.0002
        while True:
            pid = read_int(self.paths.pidfile)
            if pid:
                return pid
            if self.status is None:
                done, status = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    self.status = _exit_code(status)
                    continue        # the pid file may have been written just before the exit
            else:
                said = _runc_log_error(self.paths.runc_log) or self._stderr_tail()
                self.close()
                raise classify_create_error(said or f"runc exited with status {self.status}")
            if time.monotonic() > deadline:
                self.signal(_signal.SIGKILL)
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
        import select
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
            self.status = _exit_code(os.waitpid(self.pid, 0)[1])     # EINTR is retried (PEP 475)
        return self.status

    def signal(self, sig: int) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = {}
        self.wait()

    def abandon(self) -> None:
        """The start is being undone: the container's process (if it began) is killed."""
        pid = read_int(self.paths.pidfile)
        if pid and self.status is None:
            try:
                os.kill(pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.close()


def _exit_code(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code       # killed by signal N: 128+N, as shells say


def _spawn(args: list[str], env: dict, stdio: tuple[int, int, int]) -> int:
    """fork and exec args in a new session with stdio as its fds 0-2; its pid, at once (the exec
    runs on while we go on; if it fails the child says why on its stderr and exits 127). Not
    subprocess: importing it costs ~4 ms on every `run`. Not os.posix_spawn: glibc's leaves its
    internal signal 32 ignored in the new program, and runc would pass that on to the container."""
    pid = os.fork()
    if pid == 0:                                        # the child: no Python beyond these calls
        try:
            os.setsid()
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)                     # the copies are inheritable
            for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
                _signal.signal(sig, _signal.SIG_DFL)    # Python ignores them; exec would keep that
            os.execve(args[0], args, env)
        except OSError as e:
            os.write(2, f"cannot run {args[0]}: {e.strerror}\n".encode())
        finally:
            os._exit(127)
    return pid


class ContainerLog:
    """The container's log in conmon's k8s-file format ("<RFC 3339 time> <stream> <F|P> <text>",
    P marking a partial line), written as conmon writes it: capped at max_size bytes, past which
    the file starts over (renamed into place, as conmon does: readers following it reopen)."""

    def __init__(self, path: str | os.PathLike, max_size: int):
        self.path, self.max_size = os.fspath(path), max_size
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self.fd).st_size
        self.error: OSError | None = None      # the write that failed, after which logging stopped

    def write(self, stream: str, data: bytes) -> None:
        if self.error is not None:
            return
        import time
        from reconciler.core.timestamps import rfc3339
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
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.replace(tmp, self.path)
        os.close(self.fd)
        self.fd, self.size = fd, 0

    def close(self) -> None:
        os.close(self.fd)


def _runc_log_error(path: str) -> str | None:
    """The last error runc logged (--log-format json), or None."""
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            entry = jsontext.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", ""))
    return None


def _runc_message(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip()
    msgs = _runc_messages(text)
    return msgs[-1] if msgs else text


def _runc_messages(text: str) -> list[str]:
    """The msg="..." fields of runc's logfmt lines, unescaped."""
    import re       # only a failed runc command has messages to read
    return [m.replace('\\"', '"') for m in re.findall(r'msg="((?:[^"\\]|\\.)*)"', text)]


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


def read_int(path: str | os.PathLike) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None
