"""Read a container's cgroup: the limits the kernel enforces and its OOM state (v1 and v2).

runc creates the cgroup (linux.cgroupsPath) and applies the limits; this module only reads.
On cgroup v1 every controller has its own hierarchy (/sys/fs/cgroup/<ctrl>/<path>); on v2
there is one (/sys/fs/cgroup/<path>). A hybrid host (v1 controllers plus an empty v2 tree at
/sys/fs/cgroup/unified, like this one) counts as v1.

The cgroup lives until `runc delete`: read the OOM state after the container exited and before
deleting it (see the Containers notes in notes/interfaces.md).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.core.mountinfo import parse

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_V1_UNLIMITED = 1 << 62          # memory.limit_in_bytes reads 0x7FFFFFFFFFFFF000 when unlimited


def cgroup_version() -> int:
    return 2 if (CGROUP_ROOT / "cgroup.controllers").exists() else 1


def _v1_mounts() -> dict[str, Path]:
    """Controller -> mount point of its v1 hierarchy (handles joint mounts like cpu,cpuacct)."""
    return dict(_read_v1_mounts())


@functools.cache
def _read_v1_mounts() -> dict[str, Path]:
    """Read once per process: hosts mount their cgroup hierarchies at boot, and `rm` or `apply`
    of many containers would otherwise parse /proc/cgroups and the mount table per container."""
    found: dict[str, Path] = {}
    known = _v1_subsystems()
    for m in parse(Path("/proc/self/mountinfo").read_text()):
        if m.fstype == "cgroup2":     # hybrid: the controller-less v2 tree runc also uses
            found.setdefault("unified", Path(m.point))
        if m.fstype != "cgroup":
            continue
        for opt in m.options.split(","):
            if opt in known or opt.startswith("name="):
                found.setdefault(opt, Path(m.point))
    return found


def _v1_subsystems() -> set[str]:
    lines = Path("/proc/cgroups").read_text().splitlines()
    return {line.split()[0] for line in lines if line and not line.startswith("#")}


@dataclass(frozen=True)
class Cgroup:
    version: int
    # on v1: every mounted hierarchy ("memory", "cpu", ..., "name=systemd", and "unified" on a
    # hybrid host) -> its dir; on v2: {"": dir}
    paths: dict[str, Path] = field(default_factory=dict)

    def dir(self, controller: str) -> Path | None:
        return self.paths.get("" if self.version == 2 else controller)

    def exists(self) -> bool:
        return any(p.is_dir() for p in self.paths.values())

    def read(self, controller: str, name: str) -> str | None:
        d = self.dir(controller)
        if d is None:
            return None
        try:
            return (d / name).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None


def find_cgroup(cgroups_path: str | None = None, pid: int | None = None) -> Cgroup:
    """A container's cgroup, from runc's linux.cgroupsPath (cgroupfs driver, e.g.
    "/docker-mini/<id>") or from a process in it (/proc/<pid>/cgroup, works with any driver)."""
    version = cgroup_version()
    if pid is not None:
        rel: dict[str, str] = {}
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            hid, ctrls, path = line.split(":", 2)
            if hid == "0":
                rel["unified" if version == 1 else ""] = path
            for ctrl in ctrls.split(","):
                rel[ctrl] = path
        if version == 2:
            return Cgroup(2, {"": _under(CGROUP_ROOT, rel.get("", "/"))})
        mounts = _v1_mounts()
        return Cgroup(1, {c: _under(mounts[c], rel[c]) for c in mounts if c in rel})
    if cgroups_path is None:
        raise ValueError("find_cgroup needs cgroups_path or pid")
    if version == 2:
        return Cgroup(2, {"": _under(CGROUP_ROOT, cgroups_path)})
    mounts = _v1_mounts()
    return Cgroup(1, {c: _under(mount, cgroups_path) for c, mount in mounts.items()})


def _under(mount: Path, cgroup: str) -> Path:
    """The directory of cgroup ("/a/b", "a/b" or "/") in the hierarchy mounted at mount."""
    return mount / cgroup.lstrip("/")


def _number(text: str | None, unlimited_at: int | None = None) -> int | None:
    """An integer from a cgroup file; None for 'max', -1, absent, or v1's 'unlimited' huge value."""
    if text is None or text in ("max", "-1", ""):
        return None
    value = int(text)
    if unlimited_at is not None and value >= unlimited_at:
        return None
    return value


@dataclass(frozen=True)
class CgroupLimits:
    memory: int | None          # bytes; None = unlimited
    memory_swap: int | None     # memory + swap, bytes (Docker's MemorySwap); None = unlimited
    cpu_quota: int | None       # µs per period; None = unlimited
    cpu_period: int | None      # µs
    cpuset_cpus: str            # "" = not restricted by this cgroup
    pids_max: int | None        # None = unlimited


def read_limits(cg: Cgroup) -> CgroupLimits:
    if cg.version == 1:
        quota, period = cg.read("cpu", "cpu.cfs_quota_us"), cg.read("cpu", "cpu.cfs_period_us")
        return CgroupLimits(
            memory=_number(cg.read("memory", "memory.limit_in_bytes"), _V1_UNLIMITED),
            memory_swap=_number(cg.read("memory", "memory.memsw.limit_in_bytes"), _V1_UNLIMITED),
            cpu_quota=_number(quota), cpu_period=_number(period),
            cpuset_cpus=cg.read("cpuset", "cpuset.cpus") or "",
            pids_max=_number(cg.read("pids", "pids.max")))
    memory = _number(cg.read("memory", "memory.max"))
    swap = _number(cg.read("memory", "memory.swap.max"))
    quota_text, _, period_text = (cg.read("cpu", "cpu.max") or "max").partition(" ")
    return CgroupLimits(
        memory=memory,
        memory_swap=memory + swap if memory is not None and swap is not None else None,
        cpu_quota=_number(quota_text), cpu_period=_number(period_text or None),
        cpuset_cpus=cg.read("cpuset", "cpuset.cpus") or "",
        pids_max=_number(cg.read("pids", "pids.max")))


@dataclass(frozen=True)
class OomState:
    oom_kills: int      # processes the OOM killer killed in this cgroup
    under_oom: bool     # v1: the cgroup is in OOM right now (OOM killer disabled)
    limit_hits: int     # times usage hit the limit (v1 memory[.memsw].failcnt, v2 "max")

    @property
    def oom_killed(self) -> bool:
        return self.oom_kills > 0


def _keyed(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def read_oom(cg: Cgroup) -> OomState | None:
    """The OOM counters, or None if the cgroup is gone (after `runc delete`)."""
    if cg.version == 1:
        control = cg.read("memory", "memory.oom_control")
        if control is None:
            return None
        fields_ = _keyed(control)
        return OomState(oom_kills=fields_.get("oom_kill", 0),
                        under_oom=bool(fields_.get("under_oom", 0)),
                        limit_hits=max(_number(cg.read("memory", "memory.failcnt")) or 0,
                                       _number(cg.read("memory", "memory.memsw.failcnt")) or 0))
    events = cg.read("memory", "memory.events")
    if events is None:
        return None
    fields_ = _keyed(events)
    return OomState(oom_kills=fields_.get("oom_kill", 0), under_oom=False,
                    limit_hits=fields_.get("max", 0))


def host_cpuset() -> str:
    """The CPUs containers may use (the root cpuset), e.g. "0-1": for --cpuset-cpus checks."""
    if cgroup_version() == 2:
        path = CGROUP_ROOT / "cpuset.cpus.effective"
    else:
        mount = _v1_mounts().get("cpuset")
        path = mount / "cpuset.cpus" if mount else None
    if path is None:
        return ""
    try:
        return path.read_text().strip()
    except OSError as e:
        log.debug("no host cpuset: %s", e)
        return ""


def swap_accounting() -> bool:
    """Whether the kernel limits memory+swap (v1: memsw files exist; v2: memory.swap.max)."""
    if cgroup_version() == 2:
        return any((d / "memory.swap.max").exists()
                   for d in CGROUP_ROOT.iterdir() if not d.name.startswith("."))
    mount = _v1_mounts().get("memory")
    return bool(mount and (mount / "memory.memsw.limit_in_bytes").exists())


def host_cpus() -> int:
    return os.cpu_count() or 1


def remove_cgroup(cg: Cgroup) -> bool:
    """rmdir the container's (empty) cgroup directories: cleanup after a crash before
    `runc delete`. A cgroup with live processes (EBUSY) is left alone. True if none remains."""
    for d in cg.paths.values():
        try:
            d.rmdir()
        except FileNotFoundError:
            pass
        except OSError as e:    # still has processes or child groups: not ours to force
            log.debug("cgroup %s stays: %s", d, e)
    return not cg.exists()


def remove_leftover(cgroups_path: str, wait: float = 0.5) -> bool:
    """After `runc delete`: rmdir what it left of a container's cgroup. runc gives up on a
    directory that stays busy for a moment (a v1 memory cgroup can, while the last process is
    reaped), and with its state gone nothing else would ever remove it. Cheap when nothing is
    left; retries for up to `wait` seconds. True if nothing remains."""
    cg = find_cgroup(cgroups_path)
    deadline = None
    while cg.exists():
        if remove_cgroup(cg):
            return True
        deadline = deadline or time.monotonic() + wait
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
