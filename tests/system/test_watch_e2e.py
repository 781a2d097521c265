"""`docker-mini watch` end to end: a real watcher process over a spec directory, real containers."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path

from tests.fixtures.stacks import (inspect, names, net, pid, running_env, running_pid,  # noqa: F401 (fixtures)
                                   watch, write_spec)


def test_watch_repairs_drift_applies_edits_and_keeps_the_last_good_spec(watch, dmc, busybox_ref, tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    services = {"db": "    network: none\n    restart: always\n",
                "web": "    network: none\n    restart: always\n    depends_on: [db]\n    env: {MODE: a}\n"}
    write_spec(d / "stack.yaml", busybox_ref, services)
    w = watch(d)
    w.wait_for("the stack to run", lambda: running_pid(dmc, "shop-web") and running_pid(dmc, "shop-db"))
    db_pid = pid(dmc, "shop-db")

    # killed from outside: restarted per its policy
    web_pid = pid(dmc, "shop-web")
    os.kill(web_pid, signal.SIGKILL)
    w.wait_for("web restarted", lambda: running_pid(dmc, "shop-web") not in (None, web_pid))
    assert any(e["event"] == "restarting" and e["container"] == "shop-web" for e in w.events())
    backoff = json.loads((Path(dmc.root) / "overlay-containers" / inspect(dmc, "shop-web")["Id"]
                          / "restart-backoff.json").read_text())
    assert backoff["count"] == 1 and backoff["policy"] == "always"

    # removed from outside: created again
    dmc("rm", "-f", "shop-db")
    w.wait_for("db recreated", lambda: running_pid(dmc, "shop-db"))
    db_pid = pid(dmc, "shop-db")

    # an edit: only web is recreated
    web_pid = pid(dmc, "shop-web")
    services["web"] = services["web"].replace("MODE: a", "MODE: b")
    write_spec(d / "stack.yaml", busybox_ref, services)
    w.wait_for("the edit applied", lambda: running_pid(dmc, "shop-web") not in (None, web_pid)
               and "MODE=b" in running_env(dmc, "shop-web"))
    assert pid(dmc, "shop-db") == db_pid

    # an invalid edit is reported; the last good spec is still enforced
    (d / "stack.yaml").write_text((d / "stack.yaml").read_text() + "    memory: 12x\n")
    bad_line = len((d / "stack.yaml").read_text().splitlines())
    invalid = w.wait_for("the invalid spec reported", lambda: [
        e for e in w.events() if e["event"].startswith("invalid spec")])
    assert any(f'stack.yaml:{bad_line} containers.web.memory: "12x" is not a size' in err
               for err in invalid[0]["errors"])
    web_pid = pid(dmc, "shop-web")
    os.kill(web_pid, signal.SIGKILL)
    w.wait_for("web restarted under the old spec", lambda: running_pid(dmc, "shop-web") not in (None, web_pid))
    assert "MODE=b" in inspect(dmc, "shop-web")["Config"]["Env"]

    # fixed: converges again (a limit change, in place)
    web_pid = pid(dmc, "shop-web")
    (d / "stack.yaml").write_text((d / "stack.yaml").read_text().replace("12x", "64m"))
    w.wait_for("the fixed spec applied", lambda: inspect(dmc, "shop-web")["HostConfig"]["Memory"] == 64 << 20)
    assert pid(dmc, "shop-web") == web_pid

    # SIGTERM: the watcher stops, the containers keep running
    assert w.stop() == 0
    assert pid(dmc, "shop-web") == web_pid and pid(dmc, "shop-db") == db_pid
    assert names(dmc) == ["shop-db", "shop-web"]


def test_crash_loop_backs_off(watch, dmc, busybox_ref, tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    (d / "stack.yaml").write_text(f"stack: shop\ncontainers:\n  crash:\n    image: {busybox_ref}\n"
                                  f"    network: none\n    command: [sh, -c, 'exit 3']\n    restart: on-failure\n")
    # a long interval: exits are noticed through conmon's exit files, held restarts by their timer
    w = watch(d, interval=30)
    cid = w.wait_for("the container", lambda: names(dmc) == ["shop-crash"] and inspect(dmc, "shop-crash")["Id"])
    backoff_file = Path(dmc.root) / "overlay-containers" / cid / "restart-backoff.json"
    entry = w.wait_for("three restarts", lambda: backoff_file.exists()
                       and json.loads(backoff_file.read_text())["count"] >= 3
                       and json.loads(backoff_file.read_text()))
    assert entry["delay"] >= 4 and entry["last_exit_code"] == 3      # 1 s, 2 s, 4 s...
    delayed = [e for e in w.events() if e["event"] == "restart delayed"]
    assert delayed and delayed[0]["container"] == "shop-crash"
    starts = [e for e in w.events() if e["event"] == "restarting"]
    assert len(starts) >= 3
    assert any(e["event"] == "container exited" for e in w.events())
    # while a restart is held back, ps shows the container as Docker does: Restarting (3) N ago
    w.wait_for("ps showing the held restart", lambda: re.search(
        r"Restarting \(3\) \S+ \S+ ago", dmc("ps", "-a").stdout))


def test_concurrent_apply_and_watch_start_each_container_once(watch, dmc, busybox_ref, tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    services = {f"s{i}": "    network: none\n    restart: always\n" for i in range(3)}
    write_spec(d / "stack.yaml", busybox_ref, services)
    w = watch(d, interval=0.3)
    results = []

    def apply():
        results.append(dmc("apply", "-f", str(d), check=False))

    threads = [threading.Thread(target=apply) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    w.wait_for("all running", lambda: all(running_pid(dmc, f"shop-s{i}") for i in range(3)))
    assert names(dmc) == ["shop-s0", "shop-s1", "shop-s2"]
    for i in range(3):
        assert dmc("logs", f"shop-s{i}").stdout.count("started") == 1
    assert not [e for e in w.events() if e["event"] == "failed"]


def test_sighup_rereads_the_spec(watch, dmc, busybox_ref, tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    env_file = tmp_path / "app.env"                       # outside DIR: not watched for changes
    env_file.write_text("COLOR=red\n")
    write_spec(d / "stack.yaml", busybox_ref, {"web": "    network: none\n    env_file: ../app.env\n"})
    w = watch(d, interval=30)
    w.wait_for("the stack to run", lambda: running_pid(dmc, "shop-web"))
    assert "COLOR=red" in inspect(dmc, "shop-web")["Config"]["Env"]
    env_file.write_text("COLOR=blue\n")
    w.proc.send_signal(signal.SIGHUP)
    w.wait_for("the env file re-read", lambda: "COLOR=blue" in running_env(dmc, "shop-web"))
    assert any(e["event"] == "reload requested" for e in w.events())


def test_watch_a_single_file(watch, dmc, busybox_ref, tmp_path):
    spec = write_spec(tmp_path / "one.yaml", busybox_ref, {"web": "    network: none\n    env: {V: '1'}\n"})
    w = watch(spec, interval=30)
    w.wait_for("the stack to run", lambda: running_pid(dmc, "shop-web"))
    (tmp_path / "unrelated.txt").write_text("not a spec")
    write_spec(spec, busybox_ref, {"web": "    network: none\n    env: {V: '2'}\n"})
    w.wait_for("the edit applied", lambda: "V=2" in running_env(dmc, "shop-web"))
    changed = [e for e in w.events() if e["event"] == "spec changed"]
    assert changed and all(p == [str(spec)] for p in (e["paths"] for e in changed))
