"""apply / plan / down end to end: real images, runc containers, cgroups and the test's own bridge."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from tests.fixtures.stacks import LOOP, inspect, names, net, pid, write_spec  # noqa: F401 (net: fixture)


def memory_limit(container_pid: int) -> int:
    """The memory limit the kernel enforces on the process (cgroup v1 memory controller or v2)."""
    for line in Path(f"/proc/{container_pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return int(Path(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read_text())
    for line in Path(f"/proc/{container_pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            base = "/sys/fs/cgroup/unified" if Path("/sys/fs/cgroup/unified").is_dir() else "/sys/fs/cgroup"
            return int(Path(f"{base}{line[3:]}/memory.max").read_text())
    raise AssertionError("no memory cgroup")


def test_apply_from_empty_then_again_is_a_no_op(net, dmc, busybox_ref, tmp_path):
    spec = write_spec(tmp_path / "stack.yaml", busybox_ref, {
        "db": f"    ip: {net[0]}\n    memory: 32m\n",
        "web": f"    ip: {net[1]}\n    depends_on: [db]\n    env: {{MODE: prod}}\n",
    })
    assert dmc("apply", "--dry-run", "-f", str(spec), check=False).returncode == 2
    out = dmc("apply", "-f", str(spec)).stdout
    assert "create           shop-db" in out and "shop: 5 done" in out
    assert names(dmc) == ["shop-db", "shop-web"]
    labels = inspect(dmc, "shop-web")["Config"]["Labels"]
    assert labels["io.docker-mini.stack"] == "shop" and labels["io.docker-mini.service"] == "web"
    assert labels["io.docker-mini.spec-hash"].startswith("v1:")
    assert labels["io.docker-mini.image-digest"].startswith("sha256:")
    pids = {n: pid(dmc, n) for n in ("shop-db", "shop-web")}
    # db started first, yet lists web: peers' hosts files are rewritten once, as apply ends
    assert any(line.startswith(f"{net[1]}\t") and "shop-web" in line.split()
               for line in dmc("exec", "shop-db", "cat", "/etc/hosts").stdout.splitlines())

    again = dmc("apply", "-f", str(spec))
    assert again.stdout.strip() == "shop: converged, nothing to do"
    assert dmc("plan", "-f", str(spec)).returncode == 0
    assert dmc("apply", "--dry-run", "-f", str(spec)).returncode == 0
    assert {n: pid(dmc, n) for n in pids} == pids
    assert dmc("ps").stdout.count("shop") >= 2          # ps shows each container's stack


def test_env_change_recreates_one_and_memory_change_is_applied_in_place(net, dmc, busybox_ref, tmp_path):
    services = {"db": f"    ip: {net[0]}\n    memory: 32m\n",
                "web": f"    ip: {net[1]}\n    depends_on: [db]\n    env: {{MODE: prod}}\n"}
    spec = write_spec(tmp_path / "stack.yaml", busybox_ref, services)
    dmc("apply", "-f", str(spec))
    db_pid, web_pid = pid(dmc, "shop-db"), pid(dmc, "shop-web")
    assert memory_limit(db_pid) == 32 << 20

    services["web"] = services["web"].replace("prod", "dev")
    write_spec(spec, busybox_ref, services)
    plan = dmc("plan", "-f", str(spec), check=False)
    assert plan.returncode == 2
    assert "recreate         shop-web  spec changed: env" in plan.stdout
    dmc("apply", "-f", str(spec))
    assert pid(dmc, "shop-db") == db_pid
    assert pid(dmc, "shop-web") != web_pid
    assert "MODE=dev" in inspect(dmc, "shop-web")["Config"]["Env"]
    assert inspect(dmc, "shop-web")["NetworkSettings"]["IPAddress"] == net[1]

    services["db"] = services["db"].replace("32m", "64m")
    write_spec(spec, busybox_ref, services)
    out = dmc("apply", "-f", str(spec)).stdout
    assert "update_resources shop-db  memory 32m -> 64m" in out
    assert pid(dmc, "shop-db") == db_pid
    assert memory_limit(db_pid) == 64 << 20
    assert dmc("plan", "-f", str(spec)).returncode == 0


def test_removed_from_spec_is_removed_and_foreign_containers_are_untouched(net, dmc, busybox_ref, tmp_path):
    dmc("run", "-d", "--name", "loner", "--network", "none", busybox_ref, "sh", "-c", LOOP)
    dmc("run", "-d", "--name", "blog-web", "--network", "none", "--label", "io.docker-mini.stack=blog",
        busybox_ref, "sh", "-c", LOOP)
    foreign = {n: pid(dmc, n) for n in ("loner", "blog-web")}
    services = {"db": "    network: none\n", "web": "    network: none\n    depends_on: [db]\n"}
    spec = write_spec(tmp_path / "stack.yaml", busybox_ref, services)
    dmc("apply", "-f", str(spec))

    del services["web"]
    write_spec(spec, busybox_ref, services)
    out = dmc("apply", "-f", str(spec)).stdout
    assert "stop             shop-web  not in spec" in out and "remove           shop-web  not in spec" in out
    assert names(dmc) == ["blog-web", "loner", "shop-db"]

    out = dmc("down", "-f", str(spec)).stdout
    assert "remove           shop-db  down" in out
    assert names(dmc) == ["blog-web", "loner"]
    assert {n: pid(dmc, n) for n in foreign} == foreign


def test_partial_failure_skips_dependents_and_a_rerun_picks_up(net, dmc, busybox_ref, tmp_path):
    services = {"db": "    network: none\n    entrypoint: [/no/such/binary]\n",
                "web": "    network: none\n    depends_on: [db]\n",
                "other": "    network: none\n"}
    spec = write_spec(tmp_path / "stack.yaml", busybox_ref, services)
    proc = dmc("apply", "-f", str(spec), check=False)
    assert proc.returncode == 1
    assert "FAILED   start shop-db" in proc.stderr
    assert "skipped  start shop-web: needs start:shop-db, which failed" in proc.stdout
    assert pid(dmc, "shop-other")                         # the independent one proceeded

    services["db"] = "    network: none\n"
    write_spec(spec, busybox_ref, services)
    proc = dmc("apply", "-f", str(spec))
    assert "recreate         shop-db" in proc.stdout and "start            shop-web" in proc.stdout
    assert pid(dmc, "shop-web") and pid(dmc, "shop-db")


def test_recreate_that_cannot_create_keeps_the_old_container(net, dmc, busybox_ref, tmp_path):
    dmc("run", "-d", "--name", "squatter", "--ip", net[2], busybox_ref, "sh", "-c", LOOP)
    services = {"web": f"    ip: {net[0]}\n"}
    spec = write_spec(tmp_path / "stack.yaml", busybox_ref, services)
    dmc("apply", "-f", str(spec))

    services["web"] = f"    ip: {net[2]}\n"             # taken by a container not of this stack
    write_spec(spec, busybox_ref, services)
    proc = dmc("apply", "-f", str(spec), check=False)
    assert proc.returncode == 1
    assert "the previous container was restored" in proc.stderr
    web = inspect(dmc, "shop-web")
    assert web["State"]["Running"] and web["NetworkSettings"]["IPAddress"] == net[0]
    assert pid(dmc, "squatter")


def test_invalid_spec_fails_with_file_and_line(net, dmc, busybox_ref, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"stack: shop\ncontainers:\n  web:\n    image: {busybox_ref}\n    memory: 12x\n"
                    "    depends_on: [db]\n")
    proc = dmc("apply", "-f", str(spec), check=False)
    assert proc.returncode == 1
    assert f'{spec}:5 containers.web.memory: "12x" is not a size' in proc.stderr
    assert f'{spec}:6 containers.web.depends_on[0]: depends on unknown container "db"' in proc.stderr
    assert names(dmc) == []


def test_down_takes_its_containers_out_of_the_rules_and_the_peers_hosts(net, dmc, busybox_ref,
                                                                         test_network, tmp_path):
    """down and a removal are batches: the rules and peers' hosts files are rendered once at the
    end; what they hold afterwards is what one stop at a time would have left."""
    import subprocess
    from reconciler.core.nftables import table_name

    services = {"db": f"    ip: {net[0]}\n", "web": f"    ip: {net[1]}\n    ports: ['127.0.0.1:18080:80']\n",
                "api": f"    ip: {net[2]}\n    depends_on: [db]\n"}
    spec = write_spec(tmp_path / "stack.yaml", busybox_ref, services)
    dmc("apply", "-f", str(spec))

    def table() -> str:
        return subprocess.run(["nft", "list", "table", "ip", table_name(test_network["bridge-name"])],
                              capture_output=True, text=True).stdout

    assert net[1] in table() and "18080" in table()
    del services["web"], services["api"]
    write_spec(spec, busybox_ref, services)
    dmc("apply", "-f", str(spec))
    assert net[1] not in table() and "18080" not in table()
    hosts = dmc("exec", "shop-db", "cat", "/etc/hosts").stdout
    assert net[1] not in hosts and net[2] not in hosts and "shop-web" not in hosts

    dmc("down", "-f", str(spec))
    assert net[0] not in table()


def test_directory_of_specs_and_down_with_rmi(net, dmc, busybox_ref, tmp_path):
    d = tmp_path / "stack.d"
    d.mkdir()
    write_spec(d / "a.yaml", busybox_ref, {"db": "    network: none\n"})
    write_spec(d / "b.yaml", busybox_ref, {"web": "    network: none\n    depends_on: [db]\n"})
    dmc("apply", "-f", str(d))
    assert names(dmc) == ["shop-db", "shop-web"]
    out = dmc("down", "--rmi", "-f", str(d)).stdout
    assert f"remove_image     {busybox_ref}" in out
    assert names(dmc) == []
    assert str(busybox_ref).rsplit("/", 1)[0] not in dmc("images").stdout.split("\n", 1)[1]


def test_stops_wait_for_graceful_exits_side_by_side(net, dmc, busybox_ref, tmp_path):
    # Each container exits cleanly on SIGTERM only once the other one has had its SIGTERM too:
    # stopped one after the other, the first would be SIGKILLed at the end of its grace period.
    shared = tmp_path / "shared"
    shared.mkdir()

    def service(me, other):
        handler = f"touch /shared/{me}; while [ ! -e /shared/{other} ]; do sleep 0.1; done; exit 0"
        return (f"    network: none\n    volumes: ['{shared}:/shared']\n    stop_grace_period: 20s\n"
                f"    entrypoint: [sh, -c, \"trap '{handler}' TERM; while :; do sleep 1 & wait $!; done\"]\n"
                f"    state: {{state}}\n")

    services = {"a": service("a", "b"), "b": service("b", "a")}
    spec = tmp_path / "stack.yaml"
    write_spec(spec, busybox_ref, {n: s.format(state="running") for n, s in services.items()})
    dmc("apply", "-f", str(spec))
    write_spec(spec, busybox_ref, {n: s.format(state="stopped") for n, s in services.items()})
    out = dmc("apply", "-f", str(spec)).stdout
    assert "stop             shop-a  state: stopped" in out
    for name in ("shop-a", "shop-b"):
        state = inspect(dmc, name)["State"]
        assert not state["Running"] and state["ExitCode"] == 0, state


def test_pull_always_recreates_only_when_the_image_changed(net, dmc, image_builder, tmp_path):
    ref = image_builder("test/stack-app", [{"etc/version": "1\n"}], base="busybox", tag="live")
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"stack: shop\npull_policy: always\ncontainers:\n  app:\n    image: {ref}\n"
                    f"    network: none\n    command: [sh, -c, \"cat /etc/version; {LOOP}\"]\n")
    dmc("apply", "-f", str(spec))
    app_pid = pid(dmc, "shop-app")

    out = dmc("apply", "-f", str(spec)).stdout             # pulled again, same digest: kept
    assert "pull policy: always" in out and "recreate" not in out
    assert pid(dmc, "shop-app") == app_pid

    image_builder("test/stack-app", [{"etc/version": "2\n"}], base="busybox", tag="live")
    out = dmc("apply", "-f", str(spec)).stdout
    assert "recreate         shop-app  image digest changed" in out      # planned again after the pull
    assert "done     recreate shop-app" in out
    assert pid(dmc, "shop-app") != app_pid
    assert dmc("logs", "shop-app").stdout.split()[0] == "2"


def test_execute_skips_dependents_of_a_failure_and_runs_the_rest(monkeypatch, tmp_path):
    # The scheduler alone (actions run by a stand-in): the order and the skipping are its job.
    from reconciler.core.errors import ContainerRuntimeError
    from reconciler.core.actions import Action, NewContainer, NotFound
    from reconciler.core.spec import Stack
    from reconciler.engine import execute as ex

    ran = []

    def fake(engine, stack, action, created=None):
        ran.append(action.id)
        if action.id == "start:s-db":
            raise ContainerRuntimeError("db would not start")

    monkeypatch.setattr(ex, "run_action", fake)
    actions = [Action("create", "s-db", NotFound()),
               Action("start", "s-db", NewContainer(), deps=("create:s-db",)),
               Action("create", "s-web", NotFound()),
               Action("start", "s-web", NewContainer(), deps=("create:s-web", "start:s-db")),
               Action("start", "s-client", NewContainer(), deps=("start:s-web",)),
               Action("create", "s-other", NotFound())]
    seen = []
    from reconciler.core.config import parse_config
    from reconciler.engine.engine import Engine

    out = ex.execute(Engine(tmp_path, parse_config(None)), Stack("s", (), {}), actions, progress=lambda a, st, t: seen.append((a.id, st)))
    assert [a.id for a, _ in out.failed] == ["start:s-db"]
    assert [(a.id, why) for a, why in out.skipped] == [
        ("start:s-web", "needs start:s-db, which failed"),
        ("start:s-client", "needs start:s-web, which was skipped")]
    assert {a.id for a in out.done} == {"create:s-db", "create:s-web", "create:s-other"}
    assert ran.index("create:s-db") < ran.index("start:s-db")
    assert "start:s-web" not in ran and "start:s-client" not in ran
    assert out.summary() == "3 done, 1 failed, 2 skipped" and not out.ok


def test_a_restart_the_filter_let_through_is_not_filtered_again_after_pulls(monkeypatch, tmp_path):
    """The watcher's backoff filter records a restart when it lets it through; with a pull in
    the same plan, apply plans again after pulling and must not hand that restart to the filter
    a second time (it would count twice and be held back forever)."""
    from reconciler.core.config import parse_config
    from reconciler.core.actions import Action, ImageMissing, PolicyRestart
    from reconciler.core.restart import RestartPolicy
    from reconciler.core.spec import Stack
    from reconciler.engine import stacks
    from reconciler.engine.engine import Engine
    from reconciler.engine.execute import Outcome

    pull = Action("pull", "img", ImageMissing())
    restart = Action("start", "s-web", PolicyRestart("exited", 1, RestartPolicy("always")))
    monkeypatch.setattr(stacks, "plan_stack", lambda *a, **k: [pull, restart])
    ran = []

    def fake_execute(engine, stack, actions, progress=None):
        ran.extend(a.id for a in actions)
        return Outcome(done=list(actions))

    monkeypatch.setattr(stacks, "execute", fake_execute)
    seen = []

    def gate(actions):
        seen.extend(a.id for a in actions if a.kind == "start")
        return [a for a in actions if a.kind != "start" or seen.count(a.id) == 1]

    stacks.apply(Engine(tmp_path, parse_config(None)), Stack("s", (), {}), filter_actions=gate)
    assert seen == [restart.id]
    assert restart.id in ran
