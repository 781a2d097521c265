"""Stops at scale (issue 16): every stop a plan or a command needs is signalled as soon as the
dependency order allows, and all of them wait their grace periods at once.

Each container here ignores SIGTERM (as many real PID 1s do): its trap writes the moment the
signal arrived (/proc/uptime: one clock for every container) to a shared directory, and goes on.
So every stop waits its whole grace period and ends by SIGKILL. The assertions are about order,
never about time: dependents are signalled before what they depend on, and with more stops
than execute has workers, every stop is signalled before the first one ends (stops in waves
would signal the later ones only after the first wave ended)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from tests.fixtures.stacks import names, net  # noqa: F401 (net: fixture)

GRACE = "2s"
IGNORES_TERM = "trap 'cat /proc/uptime >> /out/$N' TERM; echo started; while :; do sleep 1 & wait $!; done"
MANY = 20                               # more than execute's 16 workers


def spec_text(image: str, out: Path, services: dict[str, list[str]], state: str = "running") -> str:
    """services: name -> depends_on."""
    text = "stack: big\ncontainers:\n"
    for name, deps in services.items():
        text += (f"  {name}:\n    image: {image}\n    command: [sh, -c, \"{IGNORES_TERM}\"]\n"
                 f"    network: none\n    stop_grace_period: {GRACE}\n    state: {state}\n"
                 f"    env: {{N: {name}}}\n    volumes: ['{out}:/out']\n")
        if deps:
            text += f"    depends_on: [{', '.join(deps)}]\n"
    return text


def term_times(out: Path) -> dict[str, list[float]]:
    """When each container got its SIGTERM, as wall-clock epoch seconds."""
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    return {f.name: [boot + float(line.split()[0]) for line in f.read_text().splitlines()]
            for f in out.iterdir()}


def finished_at(dmc, name: str) -> float:
    state = json.loads(dmc("inspect", name).stdout)[0]["State"]
    assert not state["Running"] and state["ExitCode"] == 137, state
    text = state["FinishedAt"]
    head, _, frac = text.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def wait_started(dmc, names_):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all("started" in dmc("logs", n).stdout for n in names_):
            return
        time.sleep(0.1)
    raise AssertionError("containers never started their trap")


def test_down_stops_dependents_first_and_every_level_at_once(net, dmc, busybox_ref, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    apps = [f"app{i}" for i in range(MANY)]
    services = {"db": [], **{a: ["db"] for a in apps}, "web": apps}
    spec = tmp_path / "stack.yaml"
    spec.write_text(spec_text(busybox_ref, out, services))
    dmc("apply", "-f", str(spec))
    every = [f"big-{n}" for n in services]
    wait_started(dmc, every)

    r = dmc("down", "-f", str(spec))
    assert "failed" not in r.stdout and "skipped" not in r.stdout, r.stdout
    assert names(dmc) == []
    terms = term_times(out)
    assert sorted(terms) == sorted(services)
    assert all(len(t) == 1 for t in terms.values()), terms      # one stop signal each
    web, db = terms["web"][0], terms["db"][0]
    app_terms = [terms[a][0] for a in apps]
    # web depends on every app, every app on db: web first, db last
    assert web < min(app_terms) and max(app_terms) < db


def test_state_stopped_signals_every_stop_before_the_first_ends(net, dmc, busybox_ref, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    services = {f"s{i}": [] for i in range(MANY)}
    spec = tmp_path / "stack.yaml"
    spec.write_text(spec_text(busybox_ref, out, services))
    dmc("apply", "-f", str(spec))
    wait_started(dmc, [f"big-{n}" for n in services])

    spec.write_text(spec_text(busybox_ref, out, services, state="stopped"))
    r = dmc("apply", "-f", str(spec))
    assert f"big: {MANY} done" in r.stdout, r.stdout
    terms = term_times(out)
    ends = [finished_at(dmc, f"big-{n}") for n in services]
    assert max(t[0] for t in terms.values()) < min(ends)
    assert dmc("plan", "-f", str(spec)).returncode == 0


def test_stop_and_rm_f_of_many_names(net, dmc, busybox_ref, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    services = {f"s{i}": [] for i in range(MANY)}
    spec = tmp_path / "stack.yaml"
    spec.write_text(spec_text(busybox_ref, out, services))
    dmc("apply", "-f", str(spec))
    every = [f"big-{n}" for n in services]
    wait_started(dmc, every)

    r = dmc("stop", "-t", "2", *every)
    assert r.stdout.split() == every                        # each name, in the order given
    terms = term_times(out)
    ends = [finished_at(dmc, n) for n in every]
    assert max(t[0] for t in terms.values()) < min(ends)

    dmc("start", *every)
    wait_started(dmc, every)
    r = dmc("rm", "-f", *every, "no-such-container", check=False)
    assert r.returncode == 1 and "no-such-container" in r.stderr
    assert r.stdout.split() == every
    assert names(dmc) == []
