"""A foreground `run` (no -d, -i, -t or restart policy) is monitored by the CLI itself through
one `runc run`, without conmon: what users see of such a container from other commands while
it runs, and what is left when it ends in every way it can end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.fixtures.containers import inspect, processes_under, wait_until

NONE = ("--network", "none")


def start_foreground(dmc, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "reconciler", "--root", str(dmc.root), "--config", str(dmc.config_file),
           "run", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_other_commands_see_and_control_it(dmc, busybox, root):
    proc = start_foreground(dmc, "--name", "fg", *NONE, busybox, "sh", "-c",
                            "trap 'echo term; exit 7' TERM; echo started; while true; do sleep 0.1; done")
    try:
        assert proc.stdout.readline() == b"started\n"
        state = inspect(dmc, "fg")["State"]
        assert state["Running"] is True and state["Pid"] > 0
        assert "Up " in dmc("ps").stdout
        # no conmon: only the runc run process works on this root
        assert processes_under(root, ("conmon",)) == []
        assert dmc("logs", "fg").stdout == "started\n"            # the CLI keeps the log
        assert dmc("exec", "fg", "cat", "/proc/1/comm").stdout == "sh\n"
        refused = dmc("attach", "fg", check=False)           # no conmon: no attach socket
        assert refused.returncode != 0 and "foreground" in refused.stderr and "logs -f" in refused.stderr
        assert dmc("stop", "-t", "20", "fg").returncode == 0
        assert proc.stdout.read() == b"term\n"
        proc.wait(timeout=30)
        assert proc.returncode == 7
        state = inspect(dmc, "fg")["State"]
        assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 7, False)
        assert dmc("logs", "fg").stdout == "started\nterm\n"
    finally:
        proc.kill()
        proc.wait()


def test_rm_force_while_it_runs(dmc, busybox):
    proc = start_foreground(dmc, "--rm", "--name", "gone", *NONE, busybox, "sh", "-c",
                            "echo up; exec sleep 1000")
    try:
        assert proc.stdout.readline() == b"up\n"
        dmc("rm", "-f", "gone")
        proc.wait(timeout=30)
        assert proc.returncode == 137
        assert dmc("ps", "-aq").stdout == ""
    finally:
        proc.kill()
        proc.wait()


def test_the_cli_killed_leaves_a_container_other_commands_can_end(dmc, busybox):
    proc = start_foreground(dmc, "--name", "orphan", *NONE, busybox, "sh", "-c",
                            "echo up; exec sleep 1000")
    assert proc.stdout.readline() == b"up\n"
    proc.kill()                                        # SIGKILL: nothing of ours runs after it
    proc.wait()
    assert inspect(dmc, "orphan")["State"]["Running"] is True   # as Docker's: it runs on
    dmc("stop", "-t", "1", "orphan")
    state = inspect(dmc, "orphan")["State"]
    assert state["Running"] is False and state["Status"] == "exited"
    assert "monitor (the docker-mini run in front of it) disappeared" in state["Error"]
    dmc("rm", "orphan")


def test_an_rm_container_whose_cli_was_killed_is_removed_once_it_ends(dmc, busybox):
    proc = start_foreground(dmc, "--rm", "--name", "orphan", *NONE, busybox, "sh", "-c",
                            "echo up; exec sleep 1000")
    assert proc.stdout.readline() == b"up\n"
    proc.kill()
    proc.wait()
    dmc("run", "--rm", *NONE, busybox, "true")               # while it runs on: kept
    assert inspect(dmc, "orphan")["State"]["Running"] is True
    dmc("stop", "-t", "1", "orphan")                          # ended: removed, as by Docker's daemon
    assert "orphan" not in dmc("ps", "-a", "--format", "{{.Names}}").stdout.split()

    proc = start_foreground(dmc, "--rm", "--name", "orphan", *NONE, busybox, "sh", "-c",
                            "echo up; exec sleep 1000")
    assert proc.stdout.readline() == b"up\n"
    proc.kill()
    proc.wait()
    dmc("kill", "orphan")                                     # ended from outside, nobody reaps
    assert "orphan" in dmc("ps", "-a", "--format", "{{.Names}}").stdout.split()
    dmc("run", "--rm", "--name", "orphan", *NONE, busybox, "true")    # the next run removes it
    assert dmc("ps", "-aq").stdout == ""


def test_output_is_passed_through_byte_for_byte(dmc, busybox):
    p = dmc("run", "--rm", *NONE, busybox, "sh", "-c",
            "head -c 300000 /dev/zero | tr '\\0' a; printf tail; printf err >&2")
    assert p.stdout == "a" * 300000 + "tail" and p.stderr == "err"


def test_the_process_starts_with_the_signal_dispositions_it_inherits(dmc, busybox):
    # Python ignores SIGPIPE and SIGXFSZ, and glibc's posix_spawn would leave its internal
    # signal 32 ignored: none of that may reach the container's process. What the caller itself
    # ignores may be passed on, as by any program (make starts its recipes with posix_spawn, so
    # under `make test` signals 32 and 33 arrive ignored from outside; runc resets only 33).
    python_own = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))
    inherited = _mask("SigIgn", open("/proc/self/status").read()) & ~python_own
    p = dmc("run", "--rm", *NONE, busybox, "cat", "/proc/self/status")
    assert _mask("SigBlk", p.stdout) == 0
    ignored = _mask("SigIgn", p.stdout)
    assert ignored & python_own == 0 and ignored & ~inherited == 0, hex(ignored)


def _mask(field: str, status: str) -> int:
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    return int(line.split()[1], 16)


def test_a_closed_reader_ends_the_container(dmc, busybox, root):
    # `run IMAGE yes | head -1`: once head leaves, the container's writes fail and it ends
    cmd = (f"{sys.executable} -m reconciler --root {root} --config {dmc.config_file} "
           f"run --rm --network none {busybox} yes | head -1")
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert p.stdout == "y\n"
    wait_until(lambda: dmc("ps", "-aq").stdout == "", what="the --rm container to go")


def test_signals_to_the_cli_reach_the_container_only_once(dmc, busybox):
    proc = start_foreground(dmc, "--rm", *NONE, busybox, "sh", "-c",
                            "n=0; trap 'n=$((n+1)); echo int-$n' INT; echo ready; "
                            "while [ $n -lt 2 ]; do sleep 0.05; done; sleep 0.3; echo done")
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline() == b"int-1\n"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert out == b"int-2\ndone\n" and proc.returncode == 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("mode", ["foreground", "detached"])
def test_the_log_is_capped_as_configured(dmc, busybox, tmp_path, mode):
    config = json.loads(dmc.config_file.read_text())
    config["log-max-size"] = "4k"
    capped = tmp_path / "capped.json"
    capped.write_text(json.dumps(config))
    cli = [sys.executable, "-m", "reconciler", "--root", str(dmc.root), "--config", str(capped)]
    script = "i=0; while [ $i -lt 200 ]; do printf '%099d\\n' $i; i=$((i+1)); done"   # 20 kB
    run = [*cli, "run", *(["-d"] if mode == "detached" else []), "--name", "chatty", *NONE,
           busybox, "sh", "-c", script]
    p = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    if mode == "foreground":
        assert len(p.stdout.splitlines()) == 200        # the terminal still gets everything
    else:
        subprocess.run([*cli, "wait", "chatty"], capture_output=True, timeout=60)
    cid = inspect(dmc, "chatty")["Id"]
    assert (dmc.root / "overlay-containers" / cid / "ctr.log").stat().st_size <= 4096
    kept = dmc("logs", "chatty").stdout.splitlines()
    assert 0 < len(kept) < 200
    assert kept == [f"{i:099d}" for i in range(200 - len(kept), 200)]     # the newest lines
