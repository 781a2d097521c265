"""Healthchecks without a daemon: the image's HEALTHCHECK and a spec's healthcheck run inside
the container like exec; `healthcheck NAME` runs one probe by hand, `watch` runs them when due,
`inspect` shows State.Health in Docker's shape and `ps` shows `Up ... (healthy)`."""

from __future__ import annotations

import json

from tests.fixtures.containers import wait_until
from tests.fixtures.health import healthcheck_image


def _health(dm, name) -> dict | None:
    proc = dm("inspect", name, check=False)
    return json.loads(proc.stdout)[0]["State"].get("Health") if proc.returncode == 0 else None


def _status(dm, name) -> str:
    return dm("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout.strip()


def test_image_healthcheck_by_hand(dmc, image_builder):
    image = healthcheck_image(image_builder, "test/health-file", ["CMD-SHELL", "echo probing; test -f /tmp/ok"],
                              interval=60, retries=2)
    dmc("run", "-d", "--name", "hc", "--network", "none", image, "sleep", "1000")
    assert _health(dmc, "hc") == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert _status(dmc, "hc").endswith("(health: starting)")

    first = dmc("healthcheck", "hc", check=False)
    assert first.returncode == 1 and "probing" in first.stdout, first
    assert _health(dmc, "hc")["Status"] == "starting"          # 1 failure of 2 retries
    assert dmc("healthcheck", "hc", check=False).returncode == 1
    health = _health(dmc, "hc")
    assert health["Status"] == "unhealthy" and health["FailingStreak"] == 2
    assert _status(dmc, "hc").endswith("(unhealthy)")

    dmc("exec", "hc", "touch", "/tmp/ok")
    ok = dmc("healthcheck", "hc")
    assert ok.stdout.startswith("healthy")
    health = _health(dmc, "hc")
    assert health["Status"] == "healthy" and health["FailingStreak"] == 0
    assert [r["ExitCode"] for r in health["Log"]] == [1, 1, 0]
    assert all(set(r) == {"Start", "End", "ExitCode", "Output"} for r in health["Log"])
    assert health["Log"][-1]["Output"] == "probing\n"
    assert _status(dmc, "hc").startswith("Up ") and _status(dmc, "hc").endswith("(healthy)")

    for _ in range(4):
        dmc("healthcheck", "-q", "hc")
    assert len(_health(dmc, "hc")["Log"]) == 5                    # the last 5 results

    dmc("restart", "-t", "1", "hc")                               # a new run starts over
    assert _health(dmc, "hc")["Status"] == "starting"


def test_probe_that_times_out_or_cannot_run(dmc, image_builder):
    image = healthcheck_image(image_builder, "test/health-slow", ["CMD", "sleep", "30"],
                              interval=60, retries=1, timeout=1)
    dmc("run", "-d", "--name", "slow", "--network", "none", image, "sleep", "1000")
    r = dmc("healthcheck", "slow", check=False)
    assert r.returncode == 1 and "exceeded timeout" in r.stdout, r
    last = _health(dmc, "slow")["Log"][-1]
    assert last["ExitCode"] == -1 and _health(dmc, "slow")["Status"] == "unhealthy"
    # the timed-out probe was killed: only the container's own sleep is left
    out = dmc("exec", "slow", "ps", "-o", "args").stdout
    assert "sleep 30" not in out, out


def test_no_healthcheck_is_a_clear_error(dmc, busybox_ref):
    dmc("run", "-d", "--name", "plain", "--network", "none", str(busybox_ref), "sleep", "1000")
    r = dmc("healthcheck", "plain", check=False)
    assert r.returncode != 0 and "has no healthcheck" in r.stderr and "Traceback" not in r.stderr
    assert _health(dmc, "plain") is None
    assert not _status(dmc, "plain").endswith(")")


def test_watch_runs_the_probes_when_due(watch, dmc, busybox_ref, tmp_path):
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "stack.yaml").write_text(
        f"stack: hw\ncontainers:\n  app:\n    image: {busybox_ref}\n"
        f"    command: [sh, -c, 'sleep 2; touch /tmp/ready; exec sleep 1000']\n"
        f"    network: none\n"
        f"    healthcheck:\n      test: [CMD, test, -f, /tmp/ready]\n      interval: 500ms\n"
        f"      retries: 100\n")
    w = watch(spec_dir)
    try:
        w.wait_for("app healthy", lambda: (_health(dmc, "hw-app") or {}).get("Status") == "healthy")
        health = _health(dmc, "hw-app")
        assert health["Log"][-1]["ExitCode"] == 0
        assert _status(dmc, "hw-app").endswith("(healthy)")
        events = [e for e in w.events() if e.get("event") == "health"]
        assert events and events[-1]["status"] == "healthy", w.events()
    finally:
        w.stop()
        dmc("down", "-f", str(spec_dir), check=False)
