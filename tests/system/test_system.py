"""`system check` finds what an interrupted command leaves; `system prune` removes the unused."""

import json
import os

from tests.fixtures.containers import wait_until

HEX = "ab" * 32
LAYER_HEX = "cd" * 32


def test_check_is_clean_on_a_healthy_root(dmc, busybox):
    dmc("run", "-d", "--network", "none", "--name", "up", busybox, "sleep", "60")
    r = dmc("system", "check")
    assert r.stdout.strip() == "no problems found"


def test_check_reports_and_repairs_what_a_kill_9_leaves(dmc, busybox, root):
    # What a create killed before writing its record, and a pull killed before its layer record,
    # leave on disk: directories nothing refers to.
    (root / "overlay-containers" / HEX).mkdir(parents=True)
    (root / "overlay" / HEX / "diff").mkdir(parents=True)        # its rw layer
    (root / "overlay" / LAYER_HEX / "diff").mkdir(parents=True)
    r = dmc("system", "check", check=False)
    assert r.returncode == 1
    assert f"overlay-containers/{HEX}" in r.stdout
    assert f"overlay/{LAYER_HEX}" in r.stdout
    assert "--repair" in r.stderr

    r = dmc("system", "check", "--repair")
    assert "repaired:" in r.stdout
    assert not (root / "overlay-containers" / HEX).exists()
    assert not (root / "overlay" / HEX).exists()
    assert not (root / "overlay" / LAYER_HEX).exists()
    assert dmc("system", "check").stdout.strip() == "no problems found"
    # the image survived the repair and still runs
    assert dmc("run", "--rm", "--network", "none", busybox, "echo", "ok").stdout == "ok\n"


def test_prune_removes_stopped_containers_and_unused_images_only(dmc, busybox):
    dmc("run", "-d", "--network", "none", "--name", "keep", busybox, "sleep", "60")
    dmc("create", "--network", "none", "--name", "stale", busybox, "true")
    dmc("run", "--network", "none", "--name", "done", busybox, "true")
    r = dmc("system", "prune", "-f")
    names = {c["Names"] for c in map(json.loads, dmc("ps", "-a", "--format", "json").stdout.splitlines())}
    assert names == {"keep"}, r.stdout
    assert len([l for l in r.stdout.splitlines() if l.startswith("Deleted container:")]) == 2
    # the image is tagged and in use: kept, even with -a
    dmc("system", "prune", "-a", "-f")
    assert busybox.split("/", 1)[1].split(":")[0] in dmc("images").stdout
    dmc("rm", "-f", "keep")
    r = dmc("system", "prune", "-a", "-f")
    assert "Deleted image: sha256:" in r.stdout
    assert dmc("images", "-q").stdout.strip() == ""
    wait_until(lambda: not os.listdir(dmc.root / "overlay-layers"), what="layers removed")


def test_prune_asks_before_removing(dmc, busybox):
    dmc("create", "--network", "none", "--name", "stale", busybox, "true")
    r = dmc("system", "prune", input="n\n", check=False)
    assert r.returncode != 0
    assert "stale" in dmc("ps", "-a").stdout


def test_one_torn_container_record_breaks_nothing_else_and_check_repairs_it(dmc, busybox, root):
    dmc("run", "-d", "--network", "none", "--name", "fine", busybox, "sleep", "60")
    torn = dmc("run", "-d", "--network", "none", "--name", "torn", busybox, "sleep", "60").stdout.strip()
    (root / "overlay-containers" / torn / "container.json").write_text('{"id": "')   # a torn write
    names = [json.loads(line)["Names"] for line in dmc("ps", "-a", "--format", "json").stdout.splitlines()]
    assert names == ["fine"]
    assert dmc("run", "--rm", "--network", "none", busybox, "echo", "still works").stdout == "still works\n"
    r = dmc("system", "check", check=False)
    assert r.returncode == 1 and f"{torn}/container.json" in r.stdout
    dmc("system", "check", "--repair")
    assert not (root / "overlay-containers" / torn).exists()
    assert dmc("system", "check").stdout.strip() == "no problems found"
