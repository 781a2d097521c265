"""The default security profile, seen from inside a container: capabilities, seccomp, masked
and read-only paths, namespaces, devices, rlimits; and the flags that loosen or tighten it."""

from __future__ import annotations

import os
import resource
from pathlib import Path

NONE = ("--network", "none")
CAP_SYS_ADMIN = 21
CAP_NET_ADMIN = 12


def sh(dmc, image, script, *flags, check=True):
    return dmc("run", "--rm", *NONE, *flags, image, "sh", "-c", script, check=check)


def status_field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/self/status")


def test_no_sys_admin_and_dockers_capabilities(dmc, busybox):
    status = sh(dmc, busybox, "cat /proc/self/status").stdout
    eff = int(status_field(status, "CapEff"), 16)
    assert not eff & (1 << CAP_SYS_ADMIN) and not eff & (1 << CAP_NET_ADMIN)
    assert bin(eff).count("1") == 14                       # Docker's default set
    assert status_field(status, "Seccomp") == "2"          # a filter is installed
    assert status_field(status, "NoNewPrivs") == "0"
    added = sh(dmc, busybox, "cat /proc/self/status", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL").stdout
    assert int(status_field(added, "CapEff"), 16) == 1 << CAP_NET_ADMIN


def test_mount_and_namespaces_refused(dmc, busybox):
    p = sh(dmc, busybox, "mount -t tmpfs none /tmp; echo mount=$?; unshare -U true; echo unshare=$?; "
           "unshare -n true; echo unshare_net=$?", check=True)
    assert "mount=0" not in p.stdout and "unshare=0" not in p.stdout and "unshare_net=0" not in p.stdout


def test_module_loading_refused(dmc, busybox):
    p = sh(dmc, busybox, "head -c 64 /dev/zero > /tmp/m.ko; insmod /tmp/m.ko; echo rc=$?", check=True)
    assert "rc=0" not in p.stdout
    assert "not permitted" in p.stderr.lower()


def test_sys_admin_and_unconfined_loosen_the_profile(dmc, busybox):
    p = sh(dmc, busybox, "mount -t tmpfs none /tmp && echo mounted", "--cap-add", "SYS_ADMIN")
    assert p.stdout == "mounted\n"
    p = sh(dmc, busybox, "grep Seccomp: /proc/self/status", "--security-opt", "seccomp=unconfined")
    assert p.stdout.split() == ["Seccomp:", "0"]
    p = sh(dmc, busybox, "grep NoNewPrivs: /proc/self/status", "--security-opt", "no-new-privileges")
    assert p.stdout.split() == ["NoNewPrivs:", "1"]


def test_masked_and_read_only_paths(dmc, busybox):
    masked = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list") if os.path.exists(p)]
    script = "; ".join(f"echo {p}=$(wc -c < {p} 2>/dev/null || echo absent)" for p in masked)
    out = sh(dmc, busybox, script + "; ls /sys/firmware 2>/dev/null | wc -l").stdout.splitlines()
    for line in out[:-1]:
        path, size = line.split("=")
        assert size.strip() in ("0", "absent"), line
    assert out[-1].strip() == "0"
    p = sh(dmc, busybox, "echo 1 > /proc/sys/vm/drop_caches && echo wrote-proc; "
           "touch /sys/x 2>/dev/null && echo wrote-sys; echo done", check=True)
    assert p.stdout.strip() == "done"


def test_host_processes_are_invisible(dmc, busybox):
    pids = sh(dmc, busybox, "ls /proc | grep -E '^[0-9]+$'").stdout.split()
    assert 1 <= len(pids) <= 4 and "1" in pids


def test_default_devices_and_dev_mounts(dmc, busybox):
    p = sh(dmc, busybox, "for d in null zero full random urandom tty; do test -c /dev/$d && echo $d; done; "
           "grep -E ' /dev/(pts|shm|mqueue) ' /proc/mounts | wc -l; head -c 4 /dev/urandom | wc -c; "
           "mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda; echo blocked=$?")
    lines = p.stdout.splitlines()
    assert lines[:6] == ["null", "zero", "full", "random", "urandom", "tty"]
    assert lines[6].strip() == "3" and lines[7].strip() == "4"
    assert lines[-1] != "blocked=0"                         # the device cgroup refuses host disks


def test_rlimits_clamped_and_ulimit(dmc, busybox):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = min(1048576, hard) if hard != resource.RLIM_INFINITY else 1048576
    assert sh(dmc, busybox, "ulimit -n").stdout.strip() == str(expected)
    p = sh(dmc, busybox, "ulimit -Sn; ulimit -Hn", "--ulimit", "nofile=100:200")
    assert p.stdout.split() == ["100", "200"]
    p = sh(dmc, busybox, "ulimit -Hn", "--ulimit", f"nofile={hard}:{hard * 4}")   # asks above the host
    assert p.stdout.strip() == str(hard)


def test_sys_and_cgroup_read_only(dmc, busybox):
    p = sh(dmc, busybox, "grep -E ' /sys(/fs/cgroup/[^ ]*)? (sysfs|cgroup|cgroup2) ' /proc/mounts; "
           "for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
           "/sys/fs/cgroup/memory.max; do test -e $f && { echo 1 > $f && echo wrote $f; }; done 2>/dev/null; "
           "echo end", check=True)
    lines = p.stdout.splitlines()
    assert lines[-1] == "end" and not [line for line in lines if line.startswith("wrote")]
    mounts = lines[:-1]
    assert mounts
    for line in mounts:
        assert line.split()[3].split(",")[0] == "ro", line


def test_bundle_config_is_written(dmc, busybox, root):
    cid = dmc("run", "-d", *NONE, busybox, "sleep", "30").stdout.strip()
    import json
    cfg = json.loads((Path(root) / "overlay-containers" / cid / "config.json").read_text())
    assert cfg["linux"]["cgroupsPath"].endswith(cid)
    assert any(m["destination"] == "/etc/resolv.conf" for m in cfg["mounts"])


def test_ro_bind_is_read_only_all_the_way_down(dmc, busybox, tmp_path):
    """-v DIR:/x:ro makes DIR's submounts read-only too (runc's rro), as Docker 25+ does: a plain
    ro remount covers only the top mount, leaving /x/sub writable from the container."""
    import subprocess
    top = tmp_path / "ro-top"
    sub = top / "sub"
    sub.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "dm-test-rro", str(sub)], check=True)
    try:
        p = sh(dmc, busybox, "touch /x/top-file; echo top=$?; touch /x/sub/file 2>&1; echo sub=$?",
               "-v", f"{top}:/x:ro", check=False)
        assert "top=0" not in p.stdout
        assert "sub=0" not in p.stdout
        assert "Read-only file system" in p.stdout
        (sub / "from-host").write_text("the host still writes")      # ro is the container's view only
        assert not (sub / "file").exists() and not (top / "top-file").exists()
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=False)
