"""The client side of conmon's attach socket and ctl fifo: a user's terminal wired to a container.

conmon (see /work/notes/conmon.md) listens on <bundle>/attach (SOCK_SEQPACKET). Each packet it
sends is one tag byte (2 stdout, 3 stderr) and data; what we send goes to the container's stdin
(at most 8192 bytes per packet: conmon truncates larger ones). Writing "1 ROWS COLS\\n" to
<bundle>/ctl resizes the container's terminal.

stream() runs the session: output to the user's stdout/stderr, the user's stdin to the container
(watching for the detach keys), SIGWINCH forwarded as resizes, other signals handed to a callback
(Docker's --sig-proxy). The user's terminal is put in raw mode for a -t session and restored on
every way out (return, exception, SIGTERM/SIGHUP to the CLI).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import selectors
import signal
import socket
import struct
import termios
import threading
import tty as _tty
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from reconciler.core.detach_keys import DetachMatcher

log = logging.getLogger(__name__)

STDOUT_TAG = 2
STDERR_TAG = 3
MAX_PACKET = 8192           # conmon reads the socket with a 32 KiB buffer; stay well under it
RESIZE_EVENT = 1
MAX_TERMINAL_DIM = 1000     # conmon refuses larger sizes

# Signals not forwarded to the container: Docker's exceptions, the uncatchable ones, job control,
# and the synchronous faults (a Python handler for those would spin on a real fault).
_NOT_PROXIED = {signal.SIGCHLD, signal.SIGWINCH, signal.SIGPIPE, signal.SIGURG,
                signal.SIGKILL, signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
                signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
                signal.SIGSYS, signal.SIGABRT}
PROXIED_SIGNALS = tuple(s for s in signal.valid_signals()
                        if isinstance(s, signal.Signals) and s not in _NOT_PROXIED)
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)


class AttachUnavailable(Exception):
    """Nobody listens on the attach socket (the container is not running)."""


def connect(bundle: str | os.PathLike) -> socket.socket:
    """Connect to <bundle>/attach; the path may be longer than a unix socket name allows."""
    try:
        dirfd = os.open(bundle, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AttachUnavailable(f"{bundle} does not exist") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/attach")
    except (FileNotFoundError, ConnectionRefusedError) as e:
        sock.close()
        raise AttachUnavailable(f"{bundle}/attach: {e.strerror}") from None
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dirfd)
    return sock


def terminal_size(*fds: int | None) -> tuple[int, int] | None:
    """(rows, cols) of the first fd that is a terminal with a known size (None, -1: skipped)."""
    for fd in fds:
        if fd is None or fd < 0:
            continue
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
                if rows and cols:
                    return rows, cols
    return None


def resize(ctl: str | os.PathLike, rows: int, cols: int) -> bool:
    """Ask conmon to resize the container's terminal. False if conmon is not there."""
    rows, cols = min(rows, MAX_TERMINAL_DIM), min(cols, MAX_TERMINAL_DIM)
    try:
        fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise
    try:
        os.write(fd, f"{RESIZE_EVENT} {rows} {cols}\n".encode())
        return True
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EPIPE):
            return False
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def raw_terminal(fd: int | None) -> Iterator[None]:
    """Raw mode on fd if it is a terminal; the old settings are back on any exit."""
    if fd is None or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        _tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@dataclass(frozen=True)
class StreamResult:
    detached: bool = False              # the user typed the detach keys: the container runs on
    interrupted: int | None = None      # a signal stopped the CLI's session (not forwarded)


def send_input(sock: socket.socket, data: bytes) -> None:
    for i in range(0, len(data), MAX_PACKET):
        sock.sendall(data[i:i + MAX_PACKET])


def stream(sock: socket.socket, *, stdin: int | None, stdout: int, stderr: int,
           tty: bool, detach_keys: bytes = b"", ctl: Path | None = None,
           on_signal: Callable[[int], None] | None = None) -> StreamResult:
    """Pump data between the user and the container until the container's side closes
    (it exited), the user detaches, or a signal that is not proxied stops the CLI.

    stdin: the user's input fd or None (no input). tty: the container has a terminal (the
    user's terminal goes raw, SIGWINCH becomes a resize). on_signal: Docker's sig-proxy; signals
    the CLI receives are passed to it instead of stopping the session.
    At EOF on stdin the socket is half-closed: conmon closes the container's stdin, unless it
    was started with --leave-stdin-open."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    handled = set(_STOP_SIGNALS) | ({signal.SIGWINCH} if tty and ctl else set())
    if on_signal is not None:
        handled |= set(PROXIED_SIGNALS)
    old_handlers: dict[int, object] = {}
    old_wakeup = None
    sel = selectors.PollSelector()      # epoll refuses regular files and /dev/null as stdin
    try:
        for sig in handled:
            try:
                old_handlers[sig] = signal.signal(sig, _note_signal)
            except (OSError, ValueError) as e:      # not settable here: that signal stays as it is
                log.debug("cannot handle signal %s: %s", sig, e)
        if threading.current_thread() is threading.main_thread():
            # only the main thread gets signals (a healthcheck's probe streams from another)
            old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        raw_fd = stdin if (tty and stdin is not None) else None
        with raw_terminal(raw_fd):
            if tty and ctl:
                _follow_size(ctl, stdout, stdin)
            sel.register(sock, selectors.EVENT_READ, "sock")
            sel.register(wake_r, selectors.EVENT_READ, "wake")
            if stdin is not None:
                sel.register(stdin, selectors.EVENT_READ, "stdin")
            return _pump(sel, sock, stdin, stdout, stderr, detach_keys, ctl, on_signal, wake_r)
    finally:
        sel.close()
        if old_wakeup is not None:
            signal.set_wakeup_fd(old_wakeup)
        for sig, h in old_handlers.items():
            try:
                signal.signal(sig, h)
            except (OSError, ValueError, TypeError) as e:
                log.debug("cannot restore the handler of signal %s: %s", sig, e)
        os.close(wake_r)
        os.close(wake_w)


def _follow_size(ctl: Path, stdout: int, stdin: int | None) -> None:
    """The container's terminal takes the size of the user's."""
    size = terminal_size(stdout, stdin)
    if size:
        resize(ctl, *size)


def _note_signal(signum, frame):  # the wakeup fd carries the number; nothing to do here
    pass


def _pump(sel, sock, stdin, stdout, stderr, detach_keys, ctl, on_signal, wake_r) -> StreamResult:
    matcher = DetachMatcher(detach_keys if stdin is not None else b"")
    outputs = {STDOUT_TAG: stdout, STDERR_TAG: stderr}
    while True:
        for key, _ in sel.select():
            what = key.data
            if what == "sock":
                try:
                    packet = sock.recv(65536)
                except ConnectionResetError:
                    packet = b""
                if not packet:
                    return StreamResult()
                try:
                    _write_all(outputs.get(packet[0], stdout), packet[1:])
                except BrokenPipeError:           # the user's reader left (`... | head -1`)
                    return StreamResult(interrupted=signal.SIGPIPE)
            elif what == "stdin":
                data = _read_input(stdin)
                if data is None:
                    continue
                if not data:                       # EOF from the user
                    sel.unregister(stdin)
                    rest = matcher.flush()
                    try:
                        if rest:
                            send_input(sock, rest)
                        sock.shutdown(socket.SHUT_WR)
                    except OSError as e:        # the container's side is gone already
                        log.debug("closing the container's stdin: %s", e)
                    continue
                forward, detach = matcher.feed(data)
                try:
                    if forward:
                        send_input(sock, forward)
                except (BrokenPipeError, ConnectionResetError):
                    sel.unregister(stdin)          # the container is going away; drain its output
                    continue
                if detach:
                    return StreamResult(detached=True)
            else:
                for signum in _drain_signals(wake_r):
                    if signum == signal.SIGWINCH:
                        if ctl:
                            _follow_size(ctl, stdout, stdin)
                    elif on_signal is not None and signum in PROXIED_SIGNALS:
                        on_signal(signum)
                    elif signum in _STOP_SIGNALS:
                        return StreamResult(interrupted=signum)


def _read_input(fd: int) -> bytes | None:
    try:
        return os.read(fd, MAX_PACKET)
    except BlockingIOError:
        return None
    except OSError as e:
        if e.errno == errno.EIO:           # the terminal went away: treat as EOF
            return b""
        raise


def _drain_signals(fd: int) -> list[int]:
    out = []
    while True:
        try:
            data = os.read(fd, 512)
        except BlockingIOError:
            return out
        if not data:
            return out
        out.extend(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:                # an inherited O_NONBLOCK stdout: wait for room
            select.select([], [fd], [])
            continue
        view = view[n:]
