"""A foreground `run` without -d, -i, -t or a restart policy: this process is the container's
monitor (nothing has to outlive it), its output goes straight to ours and to the log."""

from __future__ import annotations

import os
import signal

from reconciler.core import errors

PROXIED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def needs_monitor(opts) -> bool:
    """Whether the container needs conmon even in the foreground."""
    return opts.tty or opts.interactive or (opts.restart or "no") != "no"


def _write_all(fd: int, data: bytes) -> bool:
    try:
        while data:
            data = data[os.write(fd, data):]
        return True
    except BrokenPipeError:
        return False      # `run ... | head`: the container's next write fails, as in a pipeline


def run_attached(engine, container_id: str, auto_remove: bool, sig_proxy: bool = True) -> int:
    from reconciler.engine import containers

    def emit(stream: str, data: bytes) -> bool:
        return _write_all(2 if stream == "stderr" else 1, data)

    def on_started(handle) -> None:
        if sig_proxy:       # Docker's --sig-proxy: the terminal's signals go to the container
            for sig in PROXIED:
                signal.signal(sig, lambda signum, _frame: handle.signal(signum))

    try:
        code = containers.run_attached(engine, container_id, emit, on_started=on_started)
    except errors.DockerMiniError:
        if auto_remove:
            containers.remove(engine, container_id, force=True)
        raise
    containers.finish_attached(engine, container_id, auto_remove)
    return code
