"""A container's output followed in the foreground (`run` with a restart policy, `start -a`):
conmon's attach socket copied to our stdout/stderr, our signals forwarded, its exit code waited for."""

from __future__ import annotations

import sys

from reconciler.core import errors


def stream_output(sock) -> None:
    """Copy a running container's stdout/stderr from conmon's attach socket until it closes."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    while True:
        try:
            msg = sock.recv(65536)
        except InterruptedError:
            continue
        except OSError:
            break
        if not msg:
            break
        target = err if msg[0] == 3 else out
        target.write(msg[1:])
        target.flush()
    sock.close()


def connect_attach(engine, rec):
    import socket

    from reconciler.engine.containers import attach_socket_path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(attach_socket_path(engine, rec)))
        sock.shutdown(socket.SHUT_WR)   # no stdin from us: the container sees EOF only if -i
    except BaseException:
        sock.close()
        raise
    return sock


def attacher(engine, holder: dict):
    """An on_created callback that connects to the attach socket before the process runs."""
    def attach(rec):
        try:
            holder["sock"] = connect_attach(engine, rec)
        except OSError:
            holder["sock"] = None
    return attach


def proxy_signals(engine, container_id: str) -> None:
    """Docker's --sig-proxy: signals sent to the foreground CLI go to the container's process."""
    import signal

    from reconciler.cli.foreground import PROXIED
    from reconciler.engine import containers

    def forward(signum, _frame):
        try:
            containers.kill(engine, container_id, str(signum))
        except errors.DockerMiniError:
            pass

    for sig in PROXIED:
        signal.signal(sig, forward)


def follow_and_wait(engine, rec, sock, sig_proxy: bool = True) -> int:
    from reconciler.engine import containers
    if sig_proxy:
        proxy_signals(engine, rec.id)
    if sock is not None:
        stream_output(sock)
    return containers.wait(engine, rec.id)
