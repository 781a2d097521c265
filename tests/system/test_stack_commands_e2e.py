"""Stack-level commands: logs of every service with a `service |` prefix, exec by service
(-f FILE or --stack NAME), ps --filter stack=NAME, and down --stack NAME with no spec (even
one that no longer parses)."""

from __future__ import annotations

from tests.fixtures.containers import wait_until

SPEC = """\
stack: st
containers:
  db:
    image: IMAGE
    network: none
    command: [sh, -c, "echo db-1; sleep 0.4; echo db-2; exec sleep 1000"]
  web:
    image: IMAGE
    network: none
    command: [sh, -c, "sleep 0.2; echo web-1; echo web-err >&2; exec sleep 1000"]
"""


def test_logs_exec_ps_and_down_by_stack(dmc, busybox_ref, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(SPEC.replace("IMAGE", str(busybox_ref)))
    try:
        dmc("apply", "-f", str(spec))
        wait_until(lambda: "db-2" in dmc("logs", "st-db").stdout, what="db's second line")
        r = dmc("logs", "--stack", "st")
        assert r.stdout.splitlines() == ["db  | db-1", "web | web-1", "db  | db-2"], r.stdout
        assert r.stderr == "web | web-err\n"
        last = dmc("logs", "--file", str(spec), "--tail", "1")           # the last line of each
        assert (last.stdout, last.stderr) == ("db  | db-2\n", "web | web-err\n")

        assert dmc("exec", "-f", str(spec), "web", "echo", "in web").stdout == "in web\n"
        assert dmc("exec", "--stack", "st", "db", "hostname").stdout.strip() == "db"
        bad = dmc("exec", "--stack", "st", "cache", "true", check=False)
        assert bad.returncode != 0 and "no container for service 'cache'" in bad.stderr
        assert "its services: db, web" in bad.stderr

        rows = dmc("ps", "--filter", "stack=st", "--format", "{{.Names}}").stdout.split()
        assert sorted(rows) == ["st-db", "st-web"]

        spec.write_text("stack: st\ncontainers: [this is: not a spec\n")     # no longer parses
        assert dmc("down", "-f", str(spec), check=False).returncode != 0
        out = dmc("down", "--stack", "st").stdout
        assert "st: 4 done" in out, out
        assert dmc("ps", "-a", "--filter", "stack=st", "-q").stdout == ""
    finally:
        dmc("down", "--stack", "st", check=False)


def test_logs_follow_interleaves_until_every_service_has_exited(dmc, busybox_ref, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"stack: fl\ncontainers:\n"
                    f"  a:\n    image: {busybox_ref}\n    network: none\n"
                    f"    command: [sh, -c, 'sleep 1; echo a-1; sleep 1; echo a-2']\n"
                    f"  b:\n    image: {busybox_ref}\n    network: none\n"
                    f"    command: [sh, -c, 'sleep 1.5; echo b-1']\n")
    try:
        dmc("apply", "-f", str(spec))
        out = dmc("logs", "-f", "--stack", "fl", timeout=60).stdout
        assert out.splitlines() == ["a | a-1", "b | b-1", "a | a-2"], out
    finally:
        dmc("down", "--stack", "fl", check=False)


def test_down_needs_one_way_to_name_the_stack(dmc, tmp_path):
    r = dmc("down", check=False)
    assert r.returncode == 125 and "-f FILE or --stack NAME" in r.stderr
    r = dmc("down", "--stack", "gone", "-v", check=False)
    assert r.returncode == 125 and "--volumes needs the spec" in r.stderr
    out = dmc("down", "--stack", "gone").stdout
    assert "converged, nothing to do" in out


def test_logs_prefix_is_coloured_on_a_terminal(dmc, busybox_ref, tmp_path):
    import os
    import pty
    import subprocess
    import sys

    spec = tmp_path / "stack.yaml"
    spec.write_text(f"stack: col\ncontainers:\n  a:\n    image: {busybox_ref}\n    network: none\n"
                    f"    command: [echo, hello]\n")
    try:
        dmc("apply", "-f", str(spec))
        wait_until(lambda: dmc("logs", "col-a").stdout == "hello\n", what="a's line")
        main, secondary = pty.openpty()
        cmd = [sys.executable, "-m", "reconciler", "--root", str(dmc.root), "--config", str(dmc.config_file),
               "logs", "--stack", "col"]
        proc = subprocess.run(cmd, stdout=secondary, stderr=subprocess.PIPE, timeout=60)
        os.close(secondary)
        out = os.read(main, 4096)
        os.close(main)
        assert proc.returncode == 0, proc.stderr
        assert out.replace(b"\r\n", b"\n") == b"\x1b[36ma | \x1b[0mhello\n", out
    finally:
        dmc("down", "--stack", "col", check=False)
