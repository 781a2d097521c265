"""Interactive containers as a user meets them: `run -it` in a real terminal (a pty driven from
Python), resize, Ctrl-C, detach keys and re-attach, several attaches, exec (namespaces, env, user,
workdir, exit codes), stdin piping, `start -a`, `logs -f`, and nothing left behind."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from reconciler.core.detach_keys import DetachMatcher, parse_detach_keys
from reconciler.core.errors import InvalidArgument

CTRL_P, CTRL_Q, CTRL_C = b"\x10", b"\x11", b"\x03"
PROMPT = re.compile(rb"[#$] (\x1b\[[0-9;]*[A-Za-z])*$")   # ash may query the cursor or redraw
WAIT = 30.0    # a guard against hanging, never a speed assertion


# --- a terminal --------------------------------------------------------------------------------

def cli(dm, *args: str) -> list[str]:
    """The command line of the real CLI against this test's root."""
    return [sys.executable, "-m", "reconciler", "--root", str(dm.root), "--config", str(dm.config_file), *args]


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Term:
    """The CLI running on a fresh pty, as in a terminal emulator."""

    def __init__(self, dm, *args: str, rows: int = 24, cols: int = 80):
        self.master, slave = os.openpty()
        set_winsize(slave, rows, cols)
        self.proc = subprocess.Popen(cli(dm, *args), stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.seen = b""        # everything read so far
        self.pos = 0           # where the next expect() starts looking

    def send(self, data: bytes | str) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def line(self, text: str) -> None:
        self.send(text + "\r")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:            # EIO: every writer closed the pty
            return False
        self.seen += data
        return bool(data)

    def expect(self, pattern: bytes | str | re.Pattern) -> re.Match:
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(
            pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + WAIT
        while True:
            m = rx.search(self.seen, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 1.0)) and self.proc.poll() is not None
                             and not self._read(0.2)):
                raise AssertionError(f"{rx.pattern!r} not seen; terminal shows:\n"
                                     f"{self.seen[self.pos:].decode(errors='replace')}")

    def prompt(self) -> None:
        self.expect(PROMPT)

    def run(self, command: str, marker: str) -> re.Match:
        """Type a shell command whose output contains marker (a regex) and wait for it."""
        self.line(command)
        return self.expect(marker)

    def wait_attached(self) -> None:
        """Until the CLI has put its terminal in raw mode: it is connected, and keys typed from
        now on reach the container (before that the line discipline would keep them)."""
        deadline = time.monotonic() + WAIT
        while termios.tcgetattr(self.master)[3] & termios.ICANON:
            assert self.proc.poll() is None, self.seen.decode(errors="replace")
            assert time.monotonic() < deadline, "the CLI never attached"
            self._read(0.02)

    def cooked(self) -> bool:
        """The terminal is in its normal (canonical, echoing) mode."""
        lflag = termios.tcgetattr(self.master)[3]
        return bool(lflag & termios.ICANON and lflag & termios.ECHO)

    def resize(self, rows: int, cols: int) -> None:
        set_winsize(self.master, rows, cols)
        self.proc.send_signal(signal.SIGWINCH)

    def wait(self) -> int:
        deadline = time.monotonic() + WAIT
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        try:
            return self.proc.wait(timeout=1)
        finally:
            self._read(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def term(dm):
    opened: list[Term] = []

    def open_term(*args: str, **kw) -> Term:
        t = Term(dm, *args, **kw)
        opened.append(t)
        return t

    yield open_term
    for t in opened:
        t.close()


@pytest.fixture
def cleanup(dm):
    """Force-removes every container of this test's root at the end, even on failure."""
    yield
    ids = dm("ps", "-aq", check=False).stdout.split()
    if ids:
        dm("rm", "-f", *ids, check=False)


def monitors_of(root: Path) -> list[str]:
    """Live (not zombie) conmon and runc processes working for this root."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and str(root) in cmd and ("conmon" in cmd or "runc" in cmd):
            found.append(f"{pid}: {cmd}")
    return found


# --- detach keys (pure) ------------------------------------------------------------------------

def test_detach_keys_follow_dockers_syntax():
    assert parse_detach_keys("ctrl-p,ctrl-q") == CTRL_P + CTRL_Q
    assert parse_detach_keys("ctrl-a") == b"\x01"
    assert parse_detach_keys("a,b") == b"ab"
    assert parse_detach_keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_") == bytes([0, 27, 28, 29, 30, 31])
    for bad in ("ctrl-", "ctrl-1", "ab", "ctrl-p,,ctrl-q", "shift-a"):
        with pytest.raises(InvalidArgument, match="detach keys"):
            parse_detach_keys(bad)


def test_detach_matcher_holds_back_only_a_possible_sequence():
    m = DetachMatcher(CTRL_P + CTRL_Q)
    assert m.feed(b"ls" + CTRL_P) == (b"ls", False)          # held: may start the sequence
    assert m.feed(b"x") == (CTRL_P + b"x", False)             # broken: forwarded in order
    assert m.feed(CTRL_P + CTRL_P) == (CTRL_P, False)
    assert m.feed(CTRL_Q + b"after") == (b"", True)
    assert DetachMatcher(b"").feed(CTRL_P + CTRL_Q) == (CTRL_P + CTRL_Q, False)


# --- run -it -----------------------------------------------------------------------------------

def test_run_it_gives_a_shell_in_a_terminal(dm, term, busybox_ref, cleanup):
    t = term("run", "-it", "--name", "shell", busybox_ref, "sh", rows=30, cols=100)
    t.prompt()
    t.run("echo answer-$((6*7))", r"answer-42")
    t.run("echo term=$TERM tty=$(tty)", r"term=xterm tty=/dev/pts/\d+")
    t.run("stty size", r"30 100")
    t.resize(41, 132)
    t.run("stty size", r"41 132")
    t.line("exit 3")
    assert t.wait() == 3
    assert t.cooked()                                   # the user's terminal is back to normal
    assert "Exited (3)" in dm("ps", "-a").stdout


def test_a_signal_to_the_cli_restores_the_terminal(dm, term, busybox_ref, cleanup):
    t = term("run", "-it", "--name", "term", busybox_ref, "sh")
    t.prompt()
    assert not t.cooked()
    t.proc.send_signal(signal.SIGTERM)                 # e.g. the terminal window closed
    assert t.wait() == 128 + signal.SIGTERM
    assert t.cooked()
    assert "Up " in dm("ps").stdout                    # the container is not the CLI


def test_ctrl_c_reaches_the_containers_process(dm, term, busybox_ref, cleanup):
    t = term("run", "-it", "--rm", "--name", "ctrlc", busybox_ref, "sh")
    t.prompt()
    t.line("sleep 1000")
    deadline = time.monotonic() + WAIT
    while "sleep 1000" not in dm("exec", "ctrlc", "ps", "-o", "args").stdout:
        assert time.monotonic() < deadline, "sleep never started"
        time.sleep(0.05)
    t.send(CTRL_C)
    t.run("echo alive-$((1+1))", r"alive-2")      # sleep was interrupted; the shell lives on
    assert "sleep 1000" not in dm("exec", "ctrlc", "ps", "-o", "args").stdout
    assert t.proc.poll() is None
    t.line("exit")
    assert t.wait() == 0
    assert dm("ps", "-aq").stdout == ""                 # --rm


def test_detach_and_reattach_keep_the_process(dm, term, busybox_ref, cleanup):
    t = term("run", "-it", "--detach-keys", "ctrl-x", "--name", "keep", busybox_ref, "sh")
    t.prompt()
    t.run("K=kept-$((40+2)); echo pid-$$", r"pid-1")
    t.send(b"\x18")
    assert t.wait() == 0
    assert t.cooked()
    assert "Up " in dm("ps").stdout

    a = term("attach", "--detach-keys", "ctrl-a", "keep")
    a.wait_attached()
    a.line("")
    a.run("echo $K-pid-$$", r"kept-42-pid-1")      # same shell: its variable and PID 1
    a.send(CTRL_P + CTRL_Q)                        # not the detach keys of this attach
    a.run("echo still-here", r"still-here")
    a.send(b"\x01")
    assert a.wait() == 0
    assert "Up " in dm("ps").stdout

    b = term("attach", "keep")                     # the default keys: Ctrl-P Ctrl-Q
    b.wait_attached()
    b.run("echo again-$K", r"again-kept-42")
    b.send(CTRL_P + CTRL_Q)
    assert b.wait() == 0

    c = term("attach", "keep")
    c.wait_attached()
    c.line("exit 5")
    assert c.wait() == 5


def test_a_detached_rm_container_is_removed_when_it_ends(dm, term, busybox_ref, cleanup):
    """Docker removes a --rm container whenever it exits, also after the user detached."""
    t = term("run", "-it", "--rm", "--name", "gone", busybox_ref, "sh")
    t.prompt()
    t.send(CTRL_P + CTRL_Q)
    assert t.wait() == 0
    assert "gone" in dm("ps").stdout                 # detached: it runs on
    a = term("attach", "gone")
    a.wait_attached()
    a.line("exit 4")
    assert a.wait() == 4
    deadline = time.monotonic() + WAIT
    while dm("ps", "-aq").stdout != "":
        assert time.monotonic() < deadline, "the --rm container was not removed after it ended"
        time.sleep(0.05)


def test_several_attaches_see_the_same_output(dm, term, busybox_ref, cleanup):
    dm("run", "-dit", "--name", "multi", busybox_ref, "sh")
    one, two = term("attach", "multi"), term("attach", "multi")
    one.wait_attached()
    two.wait_attached()
    one.line("echo hello-$((2*5))")
    one.expect(r"hello-10")
    two.expect(r"hello-10")
    two.line("echo from-two-$((3*3))")
    one.expect(r"from-two-9")
    one.send(CTRL_P + CTRL_Q)
    assert one.wait() == 0
    two.line("exit 0")
    assert two.wait() == 0


def test_attach_without_a_terminal_streams_and_proxies_signals(dm, busybox_ref, cleanup):
    dm("run", "-d", "--name", "plain", busybox_ref, "sh", "-c",
       "trap 'echo bye >&2; exit 9' INT; while :; do echo tick; sleep 0.1; done")
    pipes = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    quiet = subprocess.Popen(cli(dm, "attach", "--no-sig-proxy", "plain"), **pipes)
    proxy = subprocess.Popen(cli(dm, "attach", "plain"), **pipes)
    try:
        assert quiet.stdout.readline() == "tick\n"
        assert proxy.stdout.readline() == "tick\n"
        quiet.send_signal(signal.SIGINT)                 # ends that attach only
        assert quiet.wait(timeout=WAIT) == 130
        assert proxy.poll() is None and "Up " in dm("ps").stdout
        proxy.send_signal(signal.SIGINT)                 # forwarded: the trap exits 9
        assert proxy.wait(timeout=WAIT) == 9
        assert proxy.stderr.read() == "bye\n"
    finally:
        for p in (quiet, proxy):
            p.kill()
            p.wait()


def test_attach_to_a_stopped_container_is_a_clear_error(dm, busybox_ref, cleanup):
    dm("create", "--name", "idle", busybox_ref, "true")
    r = dm("attach", "idle", check=False)
    assert r.returncode != 0
    assert "not running" in r.stderr and "idle" in r.stderr
    dm("start", "idle")
    dm("wait", "idle")
    r = dm("attach", "idle", check=False)
    assert r.returncode != 0 and "not running" in r.stderr


# --- stdin without a terminal ------------------------------------------------------------------

def test_run_i_pipes_stdin_and_eof_closes_it(dm, busybox_ref, cleanup):
    r = dm("run", "-i", "--rm", busybox_ref, "/no/such/cmd", input="", check=False)
    assert r.returncode == 127 and "no such file" in r.stderr.lower()
    assert dm("ps", "-aq").stdout == ""                                   # --rm even then
    r = dm("run", "-i", "--rm", busybox_ref, "cat", input="hi\nthere\n")
    assert r.stdout == "hi\nthere\n"
    r = dm("run", "-i", busybox_ref, "sh", "-c", "wc -l; exit 4", input="a\nb\nc\n", check=False)
    assert r.returncode == 4 and r.stdout.strip() == "3"


def test_stdin_from_a_file_or_dev_null(dm, busybox_ref, cleanup, tmp_path):
    data = tmp_path / "input.txt"
    data.write_text("from a file\n")
    with open(data) as f:
        r = subprocess.run(cli(dm, "run", "-i", "--rm", busybox_ref, "cat"), stdin=f,
                           capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, "from a file\n"), r.stderr
    r = subprocess.run(cli(dm, "run", "-i", "--rm", busybox_ref, "sh", "-c", "cat; echo end"),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, "end\n"), r.stderr


def test_run_without_i_gives_no_stdin(dm, busybox_ref, cleanup):
    r = dm("run", "--rm", busybox_ref, "sh", "-c", "cat; echo done", input="ignored\n")
    assert r.stdout == "done\n"


def test_run_it_needs_a_terminal_and_valid_detach_keys(dm, busybox_ref, cleanup):
    r = dm("run", "-it", busybox_ref, "true", input="", check=False)
    assert r.returncode == 125 and "not a TTY" in r.stderr
    r = dm("run", "-i", "--detach-keys", "ctrl-1", busybox_ref, "true", input="", check=False)
    assert r.returncode == 125 and "detach keys" in r.stderr
    assert dm("ps", "-aq").stdout == ""                 # nothing half-made stays


def test_signals_to_the_cli_are_forwarded_without_a_terminal(dm, busybox_ref, cleanup):
    cmd = cli(dm, "run", "-i", "--name", "sig", busybox_ref, "sh", "-c",
              "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.1; done")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)                 # Ctrl-C in the user's shell
        assert proc.wait(timeout=WAIT) == 7
        assert proc.stdout.read() == "got-int\n"
    finally:
        proc.kill()
        proc.wait()


def test_run_t_without_i_gives_a_terminal(dm, term, busybox_ref, cleanup):
    t = term("run", "-t", "--rm", busybox_ref, "sh", "-c", "tty; echo term=$TERM; exit 6")
    t.expect(r"/dev/pts/\d+\r+\nterm=xterm")
    assert t.wait() == 6


# --- start -a ----------------------------------------------------------------------------------

def test_start_a_and_ai(dm, busybox_ref, cleanup):
    dm("create", "--name", "sa", busybox_ref, "sh", "-c", "echo out; echo err >&2; exit 2")
    r = dm("start", "-a", "sa", check=False)
    assert r.returncode == 2 and r.stdout == "out\n" and r.stderr == "err\n"
    dm("create", "-i", "--name", "sai", busybox_ref, "cat")
    r = dm("start", "-ai", "sai", input="typed\n")
    assert r.stdout == "typed\n"


def test_start_ai_of_a_terminal_container(dm, term, busybox_ref, cleanup):
    dm("create", "-it", "--name", "later", busybox_ref, "sh")
    t = term("start", "-ai", "later", rows=22, cols=66)
    t.prompt()
    t.run("echo $(stty size)-$((1+1))", r"22 66-2")
    t.line("exit 2")
    assert t.wait() == 2
    t = term("start", "-ai", "later")              # again: a fresh shell, same container
    t.prompt()
    t.line("exit 0")
    assert t.wait() == 0


# --- exec --------------------------------------------------------------------------------------

@pytest.fixture
def box(dm, busybox_ref, cleanup):
    dm("run", "-d", "--name", "box", "--hostname", "boxhost", "-e", "FROM_RUN=yes", busybox_ref,
       "sleep", "1000")
    return "box"


def test_exec_joins_the_containers_namespaces_and_env(dm, box):
    assert dm("exec", box, "hostname").stdout == "boxhost\n"
    ps = dm("exec", box, "ps", "-o", "pid,args").stdout
    first = [line.split(None, 1) for line in ps.splitlines()[1:]]
    assert ["1", "sleep 1000"] in first                       # the container's PID namespace
    assert all(int(pid) < 100 for pid, _ in first)            # no host processes
    assert dm("exec", box, "sh", "-c", "echo $FROM_RUN").stdout == "yes\n"
    out = dm("exec", "-e", "FROM_RUN=no", "-e", "EXTRA=1", box, "sh", "-c", "echo $FROM_RUN$EXTRA").stdout
    assert out == "no1\n"
    assert dm("exec", "-e", "FROM_CALLER", box, "sh", "-c", "echo $FROM_CALLER",
              env={"FROM_CALLER": "caller"}).stdout == "caller\n"
    assert dm("exec", "-w", "/tmp", box, "pwd").stdout == "/tmp\n"
    assert dm("exec", "-u", "nobody", box, "id").stdout.startswith("uid=65534(nobody) gid=65534")
    assert dm("exec", "-u", "1234:5678", box, "sh", "-c", "id -u; id -g").stdout == "1234\n5678\n"
    cg_ctr = dm("exec", box, "cat", "/proc/1/cgroup").stdout
    cg_exec = dm("exec", box, "cat", "/proc/self/cgroup").stdout
    assert cg_exec == cg_ctr                                  # the same cgroup


def test_exec_exit_codes(dm, box):
    assert dm("exec", box, "true", check=False).returncode == 0
    assert dm("exec", box, "sh", "-c", "exit 3", check=False).returncode == 3
    r = dm("exec", box, "/no/such/command", check=False)
    assert r.returncode == 127 and "no such file" in r.stderr.lower()
    r = dm("exec", box, "/etc", check=False)
    assert r.returncode == 126 and "permission denied" in r.stderr.lower()
    r = dm("exec", "-u", "nosuchuser", box, "true", check=False)
    assert r.returncode != 0 and "nosuchuser" in r.stderr


def test_exec_stdin_and_detach(dm, box):
    assert dm("exec", "-i", box, "cat", input="piped\n").stdout == "piped\n"
    head = subprocess.run(shlex.join(cli(dm, "exec", box, "yes")) + " | head -n 2",
                          shell=True, capture_output=True, text=True, timeout=WAIT)
    assert head.stdout == "y\ny\n"                        # the CLI ends when its reader leaves
    assert dm("exec", box, "cat", input="not sent\n").stdout == ""
    dm("exec", "-d", box, "sh", "-c", "echo bg > /tmp/bg")
    deadline = time.monotonic() + WAIT
    while dm("exec", box, "cat", "/tmp/bg", check=False).stdout != "bg\n":
        assert time.monotonic() < deadline, "the detached exec never ran"
        time.sleep(0.1)


def test_exec_it_in_a_terminal(dm, term, box):
    t = term("exec", "-it", box, "sh", rows=20, cols=70)
    t.prompt()
    t.run("echo $TERM $(stty size) $(hostname)", r"xterm 20 70 boxhost")
    t.resize(25, 90)
    t.run("stty size", r"25 90")
    t.line("exit 4")
    assert t.wait() == 4
    nobody = term("exec", "-it", "-u", "nobody", box, "sh")
    nobody.prompt()
    nobody.run("echo $(id -u) $(tty) > /dev/tty", r"65534 /dev/pts/\d+")   # the pty is theirs
    nobody.line("exit")
    assert nobody.wait() == 0
    quick = term("exec", "-it", box, "stty", "size", rows=33, cols=77)
    quick.expect(r"33 77")                       # sized before the command started
    assert quick.wait() == 0


def test_exec_in_a_stopped_container_is_a_clear_error(dm, busybox_ref, cleanup):
    dm("create", "--name", "off", busybox_ref, "sleep", "1000")
    r = dm("exec", "off", "true", check=False)
    assert r.returncode != 0 and "not running" in r.stderr and "off" in r.stderr


# --- logs -f -----------------------------------------------------------------------------------

def test_logs_follow_until_the_container_exits(dm, busybox_ref, cleanup):
    dm("run", "-d", "--name", "talk", busybox_ref, "sh", "-c", "echo one; sleep 1; echo two")
    r = dm("logs", "-f", "talk")
    assert r.stdout == "one\ntwo\n"


# --- leaks -------------------------------------------------------------------------------------

def test_nothing_is_left_behind(dm, term, busybox_ref, root):
    dm("run", "-dit", "--name", "leak", busybox_ref, "sh")
    dm("exec", "leak", "true")
    dm("exec", "-d", "leak", "sleep", "1000")
    t = term("exec", "-it", "leak", "sh")
    t.prompt()
    t.send(CTRL_P + CTRL_Q)                  # a detached exec session, still running
    assert t.wait() == 0
    a = term("attach", "leak")
    a.wait_attached()
    a.send(CTRL_P + CTRL_Q)
    assert a.wait() == 0
    cid = json.loads(dm("inspect", "leak").stdout)[0]["Id"]
    assert len(monitors_of(root)) >= 3       # the container's conmon and two exec sessions'
    dm("rm", "-f", "leak")
    deadline = time.monotonic() + WAIT
    while monitors_of(root):
        assert time.monotonic() < deadline, f"left running: {monitors_of(root)}"
        time.sleep(0.1)
    assert not list(root.rglob(f"*{cid[:12]}*"))            # also conmon's socket-dir symlinks
    assert not [p for p in root.rglob("*") if p.is_socket() or p.is_fifo()]
