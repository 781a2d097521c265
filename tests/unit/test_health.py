"""core.health: the healthcheck a container runs (image x spec), and Docker's status rules."""

from __future__ import annotations

import pytest

from reconciler.core import health
from reconciler.core.health import HealthConfig, HealthState, ProbeResult, after_probe, merge, next_probe

NS = health.NS


@pytest.mark.parametrize("test,argv", [
    (["CMD", "wget", "-q", "x"], ("wget", "-q", "x")),
    (["CMD-SHELL", "test -f /ok"], ("/bin/sh", "-c", "test -f /ok")),
    ("curl -f localhost", ("/bin/sh", "-c", "curl -f localhost")),
    (["NONE"], None),
    (None, None),
])
def test_probe_command(test, argv):
    assert health.probe_command(test) == argv


@pytest.mark.parametrize("test", [["FOO", "x"], ["CMD"], ["CMD-SHELL", "a", "b"], [1, 2]])
def test_bad_tests_are_refused(test):
    with pytest.raises(health.HealthcheckError):
        health.probe_command(test)


IMAGE = {"Test": ["CMD-SHELL", "check"], "Interval": 5 * NS, "Timeout": 2 * NS, "Retries": 4}


def test_image_healthcheck_and_docker_defaults():
    assert merge(IMAGE, None) == HealthConfig(("/bin/sh", "-c", "check"), 5.0, 2.0, 4, 0.0)
    assert merge({"Test": ["CMD", "x"]}, None) == HealthConfig(("x",), 30.0, 30.0, 3, 0.0)
    assert merge(None, None) is None


def test_spec_overrides_the_image_field_by_field():
    assert merge(IMAGE, {"interval": 1.0}) == HealthConfig(("/bin/sh", "-c", "check"), 1.0, 2.0, 4, 0.0)
    assert merge(IMAGE, {"test": ["CMD", "y"], "retries": 1}).command == ("y",)
    assert merge(IMAGE, {"disable": True}) is None
    assert merge(IMAGE, {"test": ["NONE"]}) is None
    assert merge(None, {"test": "true", "start_period": 10}).start_period == 10.0


CONFIG = HealthConfig(("true",), interval=5.0, timeout=1.0, retries=2, start_period=10.0)


def _r(at: float, code: int) -> ProbeResult:
    return ProbeResult(at, at + 0.1, code, "")


def test_failures_in_the_start_period_do_not_count_until_healthy():
    s = HealthState("t")
    s = after_probe(s, _r(5, 1), CONFIG, run_started=0)
    assert (s.status, s.failing_streak, len(s.log)) == ("starting", 0, 1)
    s = after_probe(s, _r(11, 1), CONFIG, run_started=0)
    assert (s.status, s.failing_streak) == ("starting", 1)
    s = after_probe(s, _r(12, 1), CONFIG, run_started=0)
    assert (s.status, s.failing_streak) == ("unhealthy", 2)
    s = after_probe(s, _r(13, 0), CONFIG, run_started=0)
    assert (s.status, s.failing_streak) == ("healthy", 0)


def test_once_healthy_every_failure_counts_and_the_log_keeps_five():
    s = after_probe(HealthState("t"), _r(1, 0), CONFIG, run_started=0)
    s = after_probe(s, _r(2, 1), CONFIG, run_started=0)
    assert (s.status, s.failing_streak) == ("healthy", 1)
    for i in range(6):
        s = after_probe(s, _r(3 + i, 1), CONFIG, run_started=0)
    assert s.status == "unhealthy" and len(s.log) == 5 and s.log[-1].start == 8


def test_schedule_and_json_round_trip():
    s = HealthState("2026-01-01T00:00:00Z")
    assert next_probe(s, CONFIG, run_started=100.0) == 105.0
    s = after_probe(s, ProbeResult(105.0, 106.5, 0, "ok\n"), CONFIG, run_started=100.0)
    assert next_probe(s, CONFIG, run_started=100.0) == 111.5
    again = HealthState.from_json(s.to_json())
    assert again.status == "healthy" and again.log[0].exit_code == 0 and again.log[0].output == "ok\n"
    assert abs(again.log[0].end - 106.5) < 1e-3
    assert set(s.to_docker()) == {"Status", "FailingStreak", "Log"}


def test_timeout_result_and_ps_suffix():
    r = health.timed_out(0, 2, 2.0)
    assert r.exit_code == -1 and "exceeded timeout (2s)" in r.output
    assert health.ps_suffix("healthy") == " (healthy)"
    assert health.ps_suffix("starting") == " (health: starting)"
    assert health.ps_suffix(None) == ""
