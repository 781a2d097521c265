"""Stacks keep their promises without watch: a spec's restart policy is enforced by the
container's monitor as `run --restart` is (ps shows `Restarting (N) ...` while it waits), and
apply agrees with watch on what a policy leaves stopped."""

from __future__ import annotations

import json
import re

from tests.fixtures.containers import wait_until


def _state(dm, name) -> dict:
    return json.loads(dm("inspect", name).stdout)[0]


def test_restart_always_holds_with_no_watch(dmc, busybox_ref, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"stack: pol\ncontainers:\n  flaky:\n    image: {busybox_ref}\n    network: none\n"
                    f"    command: [sh, -c, 'echo run; sleep 0.3; exit 3']\n    restart: always\n")
    try:
        dmc("apply", "-f", str(spec))
        assert _state(dmc, "pol-flaky")["HostConfig"]["RestartPolicy"]["Name"] == "always"
        wait_until(lambda: _state(dmc, "pol-flaky")["RestartCount"] >= 3, timeout=60,
                   what="three restarts by the monitor")
        assert dmc("logs", "pol-flaky").stdout.count("run\n") >= 3
        wait_until(lambda: re.search(r"Restarting \(3\) \S+ \S+ ago",
                                     dmc("ps", "-a", "--filter", "stack=pol").stdout),
                   timeout=60, what="ps showing the held restart")
    finally:
        dmc("down", "-f", str(spec), check=False)


def test_apply_leaves_what_the_policy_leaves_stopped(dmc, busybox_ref, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"stack: pol\ncontainers:\n"
                    f"  keep:\n    image: {busybox_ref}\n    network: none\n    command: [sleep, '1000']\n"
                    f"    restart: unless-stopped\n"
                    f"  always:\n    image: {busybox_ref}\n    network: none\n    command: [sleep, '1000']\n"
                    f"    restart: always\n")
    try:
        dmc("apply", "-f", str(spec))
        dmc("stop", "-t", "1", "pol-keep", "pol-always")
        out = dmc("plan", "-f", str(spec), check=False).stdout
        assert "pol-keep" not in out, out                 # unless-stopped, stopped by hand
        assert "start            pol-always" in out, out   # always: apply starts it again
        dmc("apply", "-f", str(spec))
        assert not _state(dmc, "pol-keep")["State"]["Running"]
        assert _state(dmc, "pol-always")["State"]["Running"]
        assert "pol-keep" in dmc("ps", "-a", "--filter", "stack=pol").stdout
        assert dmc("ps", "-a", "--filter", "stack=other").stdout.count("\n") == 1   # the header only
    finally:
        dmc("down", "-f", str(spec), check=False)
