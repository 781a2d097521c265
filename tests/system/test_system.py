"""`system check` finds what an interrupted command leaves; `system prune` removes the unused."""

import json
import os

from tests.fixtures.containers import wait_until
from tests.fixtures.faults import assert_check_reports_exactly, left_on_host, run_killed_at
from tests.fixtures.stacks import write_spec

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


def test_check_reports_the_staging_dir_of_a_killed_pull_that_repair_removes(dmc, busybox_ref, root):
    # #12: after a killed pull, check said "no problems found" and --repair then removed a staging dir
    assert run_killed_at(dmc, "rename", 1, "pull", str(busybox_ref)) is None
    staging = list((root / "tmp").glob("layer-*"))
    assert staging
    r = dmc("system", "check", check=False)
    assert r.returncode == 1 and all(str(s) in r.stdout for s in staging), r.stdout
    repaired = dmc("system", "check", "--repair").stdout.splitlines()
    assert repaired == [f"repaired: {line}" for line in r.stdout.splitlines()]
    assert not list((root / "tmp").glob("layer-*"))
    assert dmc("system", "check").stdout.strip() == "no problems found"


def test_check_reports_a_half_started_container_and_its_veth_that_repair_releases(
        dmc, busybox_ref, root, tmp_path, net):
    # #12: a container left in runc's "created" state with its veth after a killed apply was not reported
    dmc("pull", str(busybox_ref))
    spec = write_spec(tmp_path / "stack.yaml", str(busybox_ref), {"web": f"    ip: {net[0]}\n"})
    assert run_killed_at(dmc, "rename", 11, "apply", "-f", str(spec)) is None   # before "running" is saved
    cid = next(n for n in os.listdir(root / "overlay-containers") if len(n) == 64)
    left = left_on_host(root)
    assert "runc state" in left[cid[:12]] and "veth" in left[cid[:12]], left
    assert_check_reports_exactly(dmc, left)
    r = dmc("system", "check", check=False)
    assert "runc state (created)" in r.stdout and "veth vdm" in r.stdout, r.stdout
    repaired = dmc("system", "check", "--repair").stdout.splitlines()
    assert repaired == [f"repaired: {line}" for line in r.stdout.splitlines()]
    assert left_on_host(root) == {}
    assert dmc("system", "check").stdout.strip() == "no problems found"
    dmc("apply", "-f", str(spec))
    assert dmc("exec", "shop-web", "true").returncode == 0


def test_check_and_repair_go_through_the_same_list(dmc, busybox, root):
    # leftovers of every area at once: check lists them, repair fixes exactly those, in order
    (root / "overlay-containers" / HEX).mkdir(parents=True)
    (root / "overlay-containers" / f".rm-{'ef' * 32}").mkdir()
    (root / "overlay" / LAYER_HEX / "diff").mkdir(parents=True)
    (root / "tmp" / "layer-1-0123456789ab" / "diff").mkdir(parents=True)
    (root / "overlay" / "l" / "DANGLINGLINKNAME0123456789").symlink_to("../nowhere/diff")
    (root / "network" / "endpoints").mkdir(parents=True, exist_ok=True)
    (root / "network" / "endpoints" / f"{'12' * 32}.json").write_text(json.dumps(
        {"id": "12" * 32, "mode": "none", "active": False}))
    r = dmc("system", "check", check=False)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 6, r.stdout
    assert dmc("system", "check", "--repair").stdout.splitlines() == [f"repaired: {line}" for line in lines]
    assert dmc("system", "check").stdout.strip() == "no problems found"
