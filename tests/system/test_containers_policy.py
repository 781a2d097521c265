"""Restart policies (conmon's exit command runs `container-cleanup`) and limits changed in place."""

from __future__ import annotations

import time

from reconciler.adapters import cgroups
from reconciler.core.config import parse_config
from reconciler.core.limits import parse_resources
from reconciler.core.ociconfig import cgroups_path
from reconciler.engine import containers
from reconciler.engine.engine import Engine
from tests.fixtures.containers import inspect, wait_until

NONE = ("--network", "none")





def test_on_failure_retries_then_gives_up(dmc, busybox):
    dmc("run", "-d", "--name", "flaky", *NONE, "--restart", "on-failure:2", busybox, "sh", "-c", "exit 3")

    def settled():
        info = inspect(dmc, "flaky")
        return info if info["RestartCount"] == 2 and info["State"]["Status"] == "exited" else None

    info = wait_until(settled, what="two restarts")
    assert info["State"]["ExitCode"] == 3
    time.sleep(1.5)
    assert inspect(dmc, "flaky")["RestartCount"] == 2          # no third attempt


def test_on_failure_does_not_restart_success(dmc, busybox):
    dmc("run", "-d", "--name", "fine", *NONE, "--restart", "on-failure", busybox, "true")
    wait_until(lambda: inspect(dmc, "fine")["State"]["Status"] == "exited", what="exit")
    time.sleep(1.0)
    info = inspect(dmc, "fine")
    assert info["RestartCount"] == 0 and info["State"]["ExitCode"] == 0


def test_always_restarts_until_stopped(dmc, busybox):
    dmc("run", "-d", "--name", "loop", *NONE, "--restart", "always", busybox, "sh", "-c", "sleep 0.3")
    wait_until(lambda: inspect(dmc, "loop")["RestartCount"] >= 1, what="a restart")
    dmc("stop", "-t", "1", "loop")
    count = inspect(dmc, "loop")["RestartCount"]
    time.sleep(1.5)
    info = inspect(dmc, "loop")
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == count


def test_update_resources_in_place(dmc, busybox, root):
    cid = dmc("run", "-d", *NONE, "-m", "64m", "--pids-limit", "20", busybox, "sleep", "60").stdout.strip()
    pid = inspect(dmc, cid)["State"]["Pid"]
    engine = Engine(root, parse_config(dmc.config_file.read_text(), str(dmc.config_file)))
    new = parse_resources(memory="96m", pids_limit=40, host_cpus=cgroups.host_cpus(),
                          host_cpuset=cgroups.host_cpuset(), update=True)
    containers.update_resources(engine, cid, new)
    limits = cgroups.read_limits(cgroups.find_cgroup(cgroups_path(cid)))
    assert limits.memory == 96 << 20 and limits.pids_max == 40
    info = inspect(dmc, cid)
    assert info["State"]["Pid"] == pid                          # the same process: in place
    assert info["HostConfig"]["Memory"] == 96 << 20 and info["HostConfig"]["PidsLimit"] == 40


def test_a_start_by_hand_gives_on_failure_its_tries_again(dmc, busybox):
    dmc("run", "-d", "--name", "again", *NONE, "--restart", "on-failure:1", busybox, "sh", "-c", "exit 3")
    wait_until(lambda: inspect(dmc, "again")["RestartCount"] == 1
               and inspect(dmc, "again")["State"]["Status"] == "exited", what="the one retry")
    time.sleep(1.0)
    dmc("start", "again")
    wait_until(lambda: inspect(dmc, "again")["RestartCount"] == 1
               and inspect(dmc, "again")["State"]["Status"] == "exited"
               and inspect(dmc, "again")["State"]["StartedAt"] != "", what="a fresh retry")
    assert inspect(dmc, "again")["RestartCount"] == 1


def test_a_signal_that_is_not_the_stop_signal_keeps_the_policy(dmc, busybox):
    """`kill -s HUP` (a reload) of a container with its own stop signal is no stop by hand."""
    dmc("run", "-d", "--name", "hup", *NONE, "--restart", "always", "--stop-signal", "SIGQUIT", busybox,
        "sh", "-c", "trap 'exit 1' HUP; echo up; while true; do sleep 0.1; done")
    wait_until(lambda: "up" in dmc("logs", "hup").stdout, what="up")
    dmc("kill", "-s", "HUP", "hup")
    wait_until(lambda: inspect(dmc, "hup")["RestartCount"] >= 1
               and inspect(dmc, "hup")["State"]["Status"] == "running", what="a policy restart")
    dmc("kill", "hup")                                   # SIGKILL: stopped by hand, stays down
    count = inspect(dmc, "hup")["RestartCount"]
    time.sleep(1.5)
    info = inspect(dmc, "hup")
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == count
