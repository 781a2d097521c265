"""The cgroup reader against cgroups that real runc made, limits applied and OOM kills counted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from reconciler.adapters import cgroups
from reconciler.core.limits import parse_resources, to_oci_resources

MiB = 1 << 20
PARENT = f"docker-mini-test-{os.getpid()}"


class Bundle:
    """A busybox-static bundle run by runc directly, detached, in /<PARENT>/<id>."""

    def __init__(self, base: Path):
        self.base = base
        self.id = uuid.uuid4().hex[:12]
        self.cgroups_path = f"/{PARENT}/{self.id}"
        self.dir = base / self.id
        rootfs = self.dir / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        for d in ("proc", "sys", "dev", "tmp"):
            (rootfs / d).mkdir()
        shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
        for applet in ("sh", "head", "tr", "sleep", "cat"):
            os.symlink("busybox", rootfs / "bin" / applet)
        subprocess.run(["runc", "spec"], cwd=self.dir, check=True)

    def runc(self, *args, check=True):
        return subprocess.run(["runc", "--root", str(self.base / "runc"), *args], cwd=self.dir,
                              capture_output=True, text=True, check=check)

    def run(self, args: list[str], resources: dict) -> None:
        config = json.loads((self.dir / "config.json").read_text())
        config["process"].update(terminal=False, args=args)
        config["root"]["readonly"] = False
        config["linux"].update(cgroupsPath=self.cgroups_path, resources=resources)
        (self.dir / "config.json").write_text(json.dumps(config))
        subprocess.run(["runc", "--root", str(self.base / "runc"), "run", "-d", self.id],
                       cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)

    def state(self) -> dict:
        return json.loads(self.runc("state", self.id).stdout)

    def wait_stopped(self) -> None:
        while self.state()["status"] != "stopped":      # the pytest timeout bounds this
            time.sleep(0.05)

    def delete(self) -> None:
        self.runc("delete", "-f", self.id, check=False)


@pytest.fixture
def bundle(tmp_path):
    b = Bundle(tmp_path)
    yield b
    b.delete()
    cgroups.remove_cgroup(cgroups.find_cgroup(cgroups_path=b.cgroups_path))
    parent = cgroups.find_cgroup(cgroups_path=f"/{PARENT}")
    for _ in range(50):     # a just-removed child can keep its parent busy for a moment
        if cgroups.remove_cgroup(parent):
            break
        time.sleep(0.02)


def test_version_follows_where_the_memory_controller_lives():
    # This host (DESIGN.md) is hybrid: v1 controllers plus an empty v2 tree, which counts as v1.
    v1_memory = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
    assert cgroups.cgroup_version() == (1 if v1_memory else 2)


def test_reads_the_limits_runc_applied_by_path_and_by_pid(bundle):
    res = parse_resources(memory="64m", cpus="0.5", cpuset_cpus="1", pids_limit=42,
                          host_cpus=cgroups.host_cpus(), host_cpuset=cgroups.host_cpuset())
    bundle.run(["sleep", "1000"], to_oci_resources(res))
    by_path = cgroups.find_cgroup(cgroups_path=bundle.cgroups_path)
    by_pid = cgroups.find_cgroup(pid=bundle.state()["pid"])
    assert by_path == by_pid
    assert by_path.dir("memory") == Path(f"/sys/fs/cgroup/memory/{PARENT}/{bundle.id}")
    limits = cgroups.read_limits(by_path)
    assert limits == cgroups.CgroupLimits(memory=64 * MiB, memory_swap=128 * MiB, cpu_quota=50000,
                                          cpu_period=100000, cpuset_cpus="1", pids_max=42)
    oom = cgroups.read_oom(by_path)
    assert oom is not None and not oom.oom_killed

    bundle.delete()
    assert not by_path.exists()
    assert cgroups.read_oom(by_path) is None


def test_unlimited_reads_as_none(bundle):
    bundle.run(["sleep", "1000"], {})
    limits = cgroups.read_limits(cgroups.find_cgroup(cgroups_path=bundle.cgroups_path))
    assert (limits.memory, limits.memory_swap, limits.cpu_quota, limits.pids_max) == (None,) * 4
    assert limits.cpu_period == 100000
    assert limits.cpuset_cpus == cgroups.host_cpuset()


def test_oom_kill_is_counted_and_readable_until_runc_delete(bundle):
    # The shell builds a 200 MB string in a 16 MB cgroup: the OOM killer kills it.
    bundle.run(["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x)"],
               {"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})
    bundle.wait_stopped()
    cg = cgroups.find_cgroup(cgroups_path=bundle.cgroups_path)
    oom = cgroups.read_oom(cg)
    assert oom is not None and oom.oom_killed and oom.oom_kills >= 1
    bundle.delete()
    assert cgroups.read_oom(cg) is None


def test_no_oom_when_the_work_fits(bundle):
    bundle.run(["sh", "-c", "x=$(head -c 1000000 /dev/zero | tr '\\0' x)"],
               {"memory": {"limit": 64 * MiB, "swap": 64 * MiB}})
    bundle.wait_stopped()
    oom = cgroups.read_oom(cgroups.find_cgroup(cgroups_path=bundle.cgroups_path))
    assert oom is not None and not oom.oom_killed


def test_host_cpuset_is_the_root_cpuset():
    assert cgroups.host_cpuset() == Path("/sys/fs/cgroup/cpuset/cpuset.cpus").read_text().strip()
    assert cgroups.host_cpus() == os.cpu_count()
