"""Interactive containers: attach to a running one, start one attached (`run`, `start -a`), exec.

The wiring is conmon's (see /work/notes/conmon.md): each container's conmon serves an attach
socket in the bundle; every exec gets its own conmon (`conmon --exec`) whose session directory
lives under the container's directory, so `rm` takes whatever is left.

The user's side is given as a Stdio of file descriptors, so the CLI passes 0, 1, 2 and tests may
pass pipes or a pty.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from reconciler.core import errors
from reconciler.core.detach_keys import DEFAULT_DETACH_KEYS, parse_detach_keys
from reconciler.engine import containers
from reconciler.engine.containers.records import ContainerRecord

log = logging.getLogger(__name__)

EXEC_DIR = "exec"


@dataclass(frozen=True)
class Stdio:
    stdin: int | None = 0      # None: nothing to send
    stdout: int = 1
    stderr: int = 2


@dataclass(frozen=True)
class SessionOutcome:
    """How an interactive session ended: the process's exit code, or detached (still running)."""
    exit_code: int | None = None
    detached: bool = False


def _remove_session(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


# --- containers --------------------------------------------------------------------------------

def _bundle(engine, record: ContainerRecord) -> Path:
    return engine.layout.container_dir(record.id)


def _name(record: ContainerRecord) -> str:
    return record.name or record.short_id


def _require_running(engine, record: ContainerRecord, verb: str) -> None:
    if not containers.is_running(engine, record):
        if verb == "attach":
            raise errors.ContainerNotRunning(
                f"cannot attach to container {_name(record)}: it is not running",
                hint=f"start it first: docker-mini start -a {_name(record)}")
        raise errors.ContainerNotRunning(
            f"cannot exec in container {_name(record)}: it is not running",
            hint=f"start it first: docker-mini start {_name(record)}")


def _connect(engine, bundle: Path, record: ContainerRecord):
    client = engine.attach_client
    try:
        return client.connect(bundle)
    except client.AttachUnavailable:
        if record.state.monitor == "cli":
            raise errors.ConflictError(
                f"cannot attach to container {_name(record)}: it runs in the foreground of the "
                f"`docker-mini run` that started it, which has no attach socket",
                hint=f"follow its output with: docker-mini logs -f {_name(record)}") from None
        raise errors.ContainerNotRunning(f"container {_name(record)} is not running "
                                         "(its monitor has no attach socket)") from None


def _signal_proxy(engine, record: ContainerRecord) -> Callable[[int], None]:
    def forward(signum: int) -> None:
        try:
            containers.kill(engine, record.id, signal=str(signum))
        except errors.DockerMiniError as e:
            log.debug("signal %d not forwarded to %s: %s", signum, record.short_id, e)
    return forward


def _stream(engine, sock, record_tty: bool, stdio: Stdio, *, send_stdin: bool, detach_keys: str,
             ctl: Path, on_signal):
    return engine.attach_client.stream(sock, stdin=stdio.stdin if send_stdin else None, stdout=stdio.stdout,
                         stderr=stdio.stderr, tty=record_tty, detach_keys=parse_detach_keys(detach_keys),
                         ctl=ctl, on_signal=on_signal)


def _finish(engine, record: ContainerRecord, result) -> SessionOutcome:
    if result.detached:
        return SessionOutcome(detached=True)
    if result.interrupted is not None:
        return SessionOutcome(exit_code=128 + result.interrupted)
    return SessionOutcome(exit_code=containers.wait(engine, record.id))


def attach(engine, name_or_id: str, *, stdin: bool = True, detach_keys: str = DEFAULT_DETACH_KEYS,
           sig_proxy: bool = True, stdio: Stdio = Stdio()) -> SessionOutcome:
    """Connect the user's terminal (or pipes) to a running container until it exits or the user
    detaches. Several attaches at once all see the output."""
    parse_detach_keys(detach_keys)              # a bad value fails before anything happens
    record = containers.resolve(engine, name_or_id)
    _require_running(engine, record, "attach")
    opts = record.options
    tty = opts.tty
    sock = _connect(engine, _bundle(engine, record), record)
    with sock:
        result = _stream(engine, sock, tty, stdio, send_stdin=stdin and opts.interactive,
                         detach_keys=detach_keys, ctl=_bundle(engine, record) / "ctl",
                         on_signal=_signal_proxy(engine, record) if sig_proxy and not tty else None)
    return _finish(engine, record, result)


def start_attached(engine, name_or_id: str, *, stdin: bool, detach_keys: str = DEFAULT_DETACH_KEYS,
                   sig_proxy: bool = True, stdio: Stdio = Stdio(), auto_remove: bool = False) -> SessionOutcome:
    """Start a created (or exited) container with the user attached from its first byte of
    output: `run` in the foreground, `start -a[i]`. stdin: the user's input goes to the
    container (it must have been created with -i); without a terminal, EOF on it closes the
    container's stdin. A container already running is simply attached to.
    auto_remove (`run --rm`): removed once it has ended, by us while attached, else (detached,
    or the CLI was stopped by a signal) by the exit command when it ends."""
    client = engine.attach_client
    parse_detach_keys(detach_keys)
    record = containers.resolve(engine, name_or_id)
    opts = record.options
    tty = opts.tty
    send_stdin = stdin and opts.interactive
    bundle = _bundle(engine, record)
    held: dict = {}

    def connect_before_start(rec: ContainerRecord) -> None:
        held["sock"] = _connect(engine, bundle, rec)
        if tty:
            size = client.terminal_size(stdio.stdout, stdio.stdin)
            if size:
                client.resize(bundle / "ctl", *size)

    claim = containers.ForegroundClaim(engine, record.id) if auto_remove else contextlib.nullcontext()
    with claim:
        try:
            try:
                record = containers.start(engine, record.id, on_created=connect_before_start,
                                          stdin_once=send_stdin and not tty) or record
            except errors.DockerMiniError:
                if auto_remove:
                    _remove_quietly(engine, record)
                raise
            if "sock" not in held:                      # it was running already
                held["sock"] = _connect(engine, bundle, record)
            result = _stream(engine, held["sock"], tty, stdio, send_stdin=send_stdin, detach_keys=detach_keys,
                             ctl=bundle / "ctl",
                             on_signal=_signal_proxy(engine, record) if sig_proxy and not tty else None)
        finally:
            if "sock" in held:
                held["sock"].close()
        outcome = _finish(engine, record, result)
        if auto_remove and not outcome.detached and result.interrupted is None:
            containers.remove(engine, record.id, force=True)
            return outcome
    if auto_remove:
        # Detached or interrupted: the exit command removes it when it ends. If it ended while we
        # still held the claim, the exit command has already passed it by: remove it now.
        try:
            ended = containers.current_state(engine, containers.resolve(engine, record.id)).status == "exited"
        except errors.DockerMiniError as e:                # removed already, most likely
            log.debug("state of --rm container %s not read: %s", record.short_id, e)
            ended = False
        if ended:
            _remove_quietly(engine, record)
    return outcome


def _remove_quietly(engine, record: ContainerRecord) -> None:
    """--rm's removal on a path that is already failing or done: a failure is only logged."""
    try:
        containers.remove(engine, record.id, force=True)
    except errors.DockerMiniError as e:
        log.debug("--rm container %s not removed: %s", record.short_id, e)


# --- exec --------------------------------------------------------------------------------------

def _exec_process(bundle: Path, cmd: list[str], *, tty: bool, env: list[str], workdir: str | None,
                  user: str | None, caller_env: dict[str, str], size: tuple[int, int] | None) -> dict:
    from reconciler.core.ociprocess import merge_env
    from reconciler.core.ociusers import resolve_user

    config = json.loads((bundle / "config.json").read_text())
    process = config["process"]                 # ours to change: config is parsed afresh
    process.pop("consoleSize", None)
    if tty and size:
        # runc sizes the terminal before the process starts: no resize (SIGWINCH) right after
        process["consoleSize"] = {"height": size[0], "width": size[1]}
    process["args"] = list(cmd)
    process["terminal"] = bool(tty)
    overrides = []
    for item in env:
        if "=" in item:
            overrides.append(item)
        elif item in caller_env:                         # Docker: "-e KEY" takes the caller's value
            overrides.append(f"{item}={caller_env[item]}")
    base = list(process.get("env") or [])
    if tty and not any(e.startswith("TERM=") for e in base):
        base.append("TERM=xterm")
    if user:
        root = Path(config["root"]["path"])
        rootfs = root if root.is_absolute() else bundle / root
        read = containers.read_in_rootfs
        who = resolve_user(user, read(rootfs, "/etc/passwd"), read(rootfs, "/etc/group"))
        process["user"] = {"uid": who.uid, "gid": who.gid}
        if who.additional_gids:
            process["user"]["additionalGids"] = list(who.additional_gids)
        base = merge_env(base, [f"HOME={who.home}"])
    process["env"] = merge_env(base, overrides)
    if workdir:
        if not workdir.startswith("/"):
            raise errors.InvalidArgument(f"the working directory {workdir!r} is invalid, "
                                         "it needs to be an absolute path")
        process["cwd"] = workdir
    return process


def _collect_finished_sessions(exec_root: Path) -> None:
    """Exec sessions whose conmon wrote an exit file are over: their directories can go."""
    with contextlib.suppress(FileNotFoundError):
        for d in exec_root.iterdir():
            if any((d / "exit").glob("*")):
                _remove_session(d)


def _exec_error(engine, message: str, record: ContainerRecord) -> errors.DockerMiniError:
    low = message.lower()
    if "stopped container" in low or "not running" in low or "does not exist" in low:
        return errors.ContainerNotRunning(f"cannot exec in container {_name(record)}: it is not running")
    return engine.processes.classify_create_error(message)


def exec_(engine, name_or_id: str, cmd: list[str], *, interactive: bool = False, tty: bool = False,
          detach: bool = False, env: list[str] | None = None, workdir: str | None = None,
          user: str | None = None, detach_keys: str = DEFAULT_DETACH_KEYS,
          stdio: Stdio = Stdio(), caller_env: dict[str, str] | None = None) -> SessionOutcome:
    """Run cmd in a running container's namespaces and cgroup, with its env (-e overrides).

    Attached (the default): returns the command's exit code; not found / not executable raise
    CommandNotFound / CommandNotExecutable (Docker's 127 / 126). detach: returns once it runs."""
    client = engine.attach_client
    if not cmd:
        raise errors.InvalidArgument("exec needs a command to run")
    parse_detach_keys(detach_keys)
    record = containers.resolve(engine, name_or_id)
    _require_running(engine, record, "exec")
    bundle = _bundle(engine, record)
    size = client.terminal_size(stdio.stdout, stdio.stdin) if tty else None
    process = _exec_process(bundle, cmd, tty=tty, env=list(env or []), workdir=workdir, user=user,
                            caller_env=dict(os.environ if caller_env is None else caller_env), size=size)
    exec_root = bundle / EXEC_DIR
    _collect_finished_sessions(exec_root)
    exec_id = os.urandom(16).hex()
    directory = exec_root / exec_id
    try:
        session = engine.runtime.exec(record.id, exec_id, directory, process, terminal=tty,
                                      stdin=interactive and not detach, attach=not detach)
    except errors.ExecFailed as e:
        _remove_session(directory)
        raise _exec_error(engine, e.message, record) from None
    sock = None
    finished = False
    try:
        if not detach:
            try:
                sock = _connect(engine, directory, record)
            except BaseException:
                session.abort()
                finished = True
                raise
        try:
            session.start()
        except errors.ExecFailed as e:
            finished = True
            raise _exec_error(engine, e.message, record) from None
        if detach:
            return SessionOutcome(detached=True)
        result = client.stream(sock, stdin=stdio.stdin if interactive else None, stdout=stdio.stdout,
                               stderr=stdio.stderr, tty=tty, detach_keys=parse_detach_keys(detach_keys),
                               ctl=session.ctl)
        if result.detached:
            return SessionOutcome(detached=True)
        if result.interrupted is not None:
            return SessionOutcome(exit_code=128 + result.interrupted)
        code = session.wait()
        finished = True
        return SessionOutcome(exit_code=code)
    finally:
        if sock is not None:
            sock.close()
        session.close()
        if finished:
            _remove_session(directory)
