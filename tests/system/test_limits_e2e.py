"""Limits and the disk quota end to end: `docker-mini run` with Docker's flags, read back from the
container's own cgroup files (inside and from the host), the OOM killer, the pids limit,
`--storage-opt size=` and Docker's refusals of bad values."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from reconciler.adapters import cgroups, overlay

MiB = 1 << 20
V1 = cgroups.cgroup_version() == 1
NPROC = os.cpu_count()

# Prints the limits the container sees in its own /sys/fs/cgroup, as key=value lines.
READ_OWN_CGROUP_V1 = """
echo memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
echo memsw=$(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes)
echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
echo period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
echo cpuset=$(cat /sys/fs/cgroup/cpuset/cpuset.cpus)
echo pids=$(cat /sys/fs/cgroup/pids/pids.max)
"""
READ_OWN_CGROUP_V2 = """
echo memory=$(cat /sys/fs/cgroup/memory.max)
echo swap=$(cat /sys/fs/cgroup/memory.swap.max)
set -- $(cat /sys/fs/cgroup/cpu.max); echo quota=$1; echo period=$2
echo cpuset=$(cat /sys/fs/cgroup/cpuset.cpus)
echo pids=$(cat /sys/fs/cgroup/pids.max)
"""
V1_UNLIMITED = str(0x7FFFFFFFFFFFF000)


@pytest.fixture
def ctr(dm):
    """dm, plus: every container is removed after the test (rm -f), with its cgroups and
    loop devices, even when the test failed."""
    yield dm
    records = dm.root / "overlay-containers"
    ids = sorted(p.name for p in records.iterdir()) if records.is_dir() else []
    if ids:
        dm("rm", "-f", *ids, check=False)
    for cid in ids:
        cgroups.remove_cgroup(cgroups.find_cgroup(cgroups_path=f"/docker-mini/{cid}"))
    for image in dm.root.glob("overlay/*/disk.img"):
        for dev in overlay.loop_devices_for(image):
            subprocess.run(["losetup", "-d", dev], check=False)


def own_cgroup(dm, image, *flags) -> dict[str, str]:
    script = READ_OWN_CGROUP_V1 if V1 else READ_OWN_CGROUP_V2
    out = dm("run", "--rm", "--network", "none", *flags, image, "sh", "-c", script).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def inspect(dm, name) -> dict:
    data = json.loads(dm("inspect", name).stdout)
    return data[0] if isinstance(data, list) else data


def test_limits_are_what_the_container_sees_in_its_own_cgroup(ctr, busybox_ref):
    seen = own_cgroup(ctr, busybox_ref, "-m", "64m", "--cpus", "0.5", "--pids-limit", "42",
                      "--cpuset-cpus", "0")
    assert seen["memory"] == str(64 * MiB)
    if V1:
        assert seen["memsw"] == str(128 * MiB)          # Docker's default: swap as large as memory
    else:
        assert seen["swap"] == str(64 * MiB)
    assert (seen["quota"], seen["period"]) == ("50000", "100000")
    assert seen["cpuset"] == "0"
    assert seen["pids"] == "42"


def test_no_flags_no_limits(ctr, busybox_ref):
    seen = own_cgroup(ctr, busybox_ref)
    assert seen["memory"] == (V1_UNLIMITED if V1 else "max")
    assert seen["quota"] == ("-1" if V1 else "max")
    assert seen["pids"] == "max"


def test_cpu_period_quota_and_memory_swap(ctr, busybox_ref):
    seen = own_cgroup(ctr, busybox_ref, "--cpu-period", "50000", "--cpu-quota", "20000",
                      "-m", "32m", "--memory-swap", "48m")
    assert (seen["quota"], seen["period"]) == ("20000", "50000")
    assert seen["memory"] == str(32 * MiB)
    assert seen["memsw" if V1 else "swap"] == str((48 if V1 else 16) * MiB)
    unlimited_swap = own_cgroup(ctr, busybox_ref, "-m", "32m", "--memory-swap", "-1")
    assert unlimited_swap["memsw" if V1 else "swap"] == (V1_UNLIMITED if V1 else "max")


def test_host_reads_the_same_limits_and_inspect_reports_them(ctr, busybox_ref):
    cid = ctr("run", "-d", "--network", "none", "--name", "limited", "-m", "64m", "--cpus", "0.75",
              "--pids-limit", "42", "--cpuset-cpus", "0", busybox_ref, "sleep", "1000").stdout.strip()
    info = inspect(ctr, "limited")
    assert info["Id"] == cid
    assert info["State"]["Running"] is True
    want = cgroups.CgroupLimits(memory=64 * MiB, memory_swap=128 * MiB, cpu_quota=75000,
                                cpu_period=100000, cpuset_cpus="0", pids_max=42)
    by_pid = cgroups.find_cgroup(pid=info["State"]["Pid"])
    assert cgroups.read_limits(by_pid) == want
    by_path = cgroups.find_cgroup(cgroups_path=f"/docker-mini/{cid}")
    assert by_path.dir("memory") == by_pid.dir("memory")
    host = info["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["PidsLimit"],
            host["CpusetCpus"], host["CpuPeriod"], host["CpuQuota"]) == \
        (64 * MiB, 128 * MiB, 750_000_000, 42, "0", 0, 0)

    ctr("rm", "-f", "limited")
    assert not by_path.exists()                          # rm leaves no cgroup behind


def test_allocating_past_the_memory_limit_is_oom_killed(ctr, busybox_ref):
    # The shell itself (pid 1) grows a 200 MB string inside a 16 MB limit.
    proc = ctr("run", "--network", "none", "--name", "hog", "-m", "16m", busybox_ref,
               "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived",
               check=False)
    assert proc.returncode == 137, proc.stderr
    assert "survived" not in proc.stdout
    state = inspect(ctr, "hog")["State"]
    assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 137, True)


def test_exit_137_without_the_oom_killer_is_not_oomkilled(ctr, busybox_ref):
    # A child SIGKILLed by hand, its status passed on: 137 alone must not read as an OOM kill.
    proc = ctr("run", "--network", "none", "--name", "selfkill", "-m", "16m", busybox_ref,
               "sh", "-c", "sleep 100 & kill -9 $!; wait $!", check=False)
    assert proc.returncode == 137
    state = inspect(ctr, "selfkill")["State"]
    assert (state["ExitCode"], state["OOMKilled"]) == (137, False)


FORK_MANY = "for i in $(seq 40); do sleep 60 & done; echo loop-done"


def test_forking_past_the_pids_limit_fails(ctr, busybox_ref):
    limited = ctr("run", "--rm", "--network", "none", "--pids-limit", "10", busybox_ref,
                  "sh", "-c", FORK_MANY, check=False)
    assert "can't fork" in limited.stderr + limited.stdout
    roomy = ctr("run", "--rm", "--network", "none", "--pids-limit", "100", busybox_ref,
                "sh", "-c", FORK_MANY, check=False)
    assert "can't fork" not in roomy.stderr + roomy.stdout
    assert "loop-done" in roomy.stdout


def test_storage_opt_size_gives_enospc_inside_and_rm_leaves_nothing(ctr, busybox_ref):
    proc = ctr("run", "--network", "none", "--name", "small", "--storage-opt", "size=8m",
               busybox_ref, "sh", "-c",
               "dd if=/dev/zero of=/fits bs=1M count=2 && dd if=/dev/zero of=/big bs=1M count=32",
               check=False)
    assert proc.returncode != 0
    assert "No space left on device" in proc.stderr + proc.stdout
    cid = inspect(ctr, "small")["Id"]
    image = ctr.root / "overlay" / cid / "disk.img"
    assert image.exists()

    ctr("rm", "small")
    assert not (ctr.root / "overlay" / cid).exists()
    assert overlay.loop_devices_for(image) == []
    assert overlay.mounts_under(ctr.root) == []


def test_without_storage_opt_the_same_write_succeeds(ctr, busybox_ref):
    proc = ctr("run", "--rm", "--network", "none", busybox_ref, "sh", "-c",
               "dd if=/dev/zero of=/big bs=1M count=32 && echo wrote")
    assert "wrote" in proc.stdout


BAD = [
    (["-m", "4m"], "Minimum memory limit allowed is 6MB"),
    (["-m", "64m", "--memory-swap", "32m"],
     "Minimum memoryswap limit should be larger than memory limit"),
    (["--memory-swap", "64m"], "You should always set the Memory limit when using Memoryswap limit"),
    (["--cpus", str(NPROC + 1)],
     f"range of CPUs is from 0.01 to {NPROC}.00, as there are only {NPROC} CPUs available"),
    (["--cpus", "1", "--cpu-period", "50000"],
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    (["--cpus", "1", "--cpu-quota", "50000"],
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    (["--cpu-period", "500"], "CPU cfs period can not be less than 1ms (i.e. 1000)"),
    (["--cpu-quota", "500"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    (["--cpuset-cpus", "0-x"], "Invalid value 0-x for cpuset cpus"),
    (["--cpuset-cpus", str(NPROC + 3)], "Requested CPUs are not available"),
    (["--storage-opt", "size=100k"], "too small"),
]


@pytest.mark.parametrize("flags,message", BAD, ids=[" ".join(f) for f, _ in BAD])
def test_bad_values_are_refused_with_dockers_message_and_create_nothing(ctr, busybox_ref, flags,
                                                                         message):
    proc = ctr("run", "--network", "none", *flags, busybox_ref, "true", check=False)
    assert proc.returncode == 125
    assert message in proc.stderr
    assert ctr("ps", "-a", "-q").stdout.strip() == ""
    containers = ctr.root / "overlay-containers"
    assert not containers.exists() or list(containers.iterdir()) == []
    assert overlay.mounts_under(ctr.root) == []


def test_an_image_with_sixty_layers_runs(ctr, image_builder):
    # Layer i adds /layer-i and rewrites /top: the rootfs needs all 61 layers (busybox below)
    # in one overlay mount, which fits in a page only through the overlay/l/ short links.
    ref = image_builder("test/sixty", [{f"layer-{i}": str(i), "top": str(i)} for i in range(60)],
                        base="busybox", cmd=["sh"])
    out = ctr("run", "--rm", "--network", "none", ref, "sh", "-c",
              "cat /top; echo; cat /layer-0; echo; ls / | grep -c '^layer-'").stdout.split()
    assert out == ["59", "0", "60"]
    assert overlay.mounts_under(ctr.root) == []
