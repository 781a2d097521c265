"""The OCI runtime config.json of a container: image config + user options -> runc's bundle config.

Pure: everything read from disk (the rootfs's /etc/passwd and /etc/group, the host's rlimits, the
resolved mount destinations) is passed in. Docker's defaults throughout: namespaces, mounts,
capabilities, masked paths, seccomp. The parts live beside it: ociprocess (what runs), ociusers
(the exec user), ocimounts (volumes, tmpfs, default mounts), ocilimits (ulimits), ocisecurity
(capabilities, --security-opt).
"""

from __future__ import annotations

from typing import Any

from reconciler.core import seccomp
from reconciler.core.ocilimits import rlimits
from reconciler.core.ocimounts import MountPlan, default_mounts
from reconciler.core.ociprocess import ProcessSpec
from reconciler.core.ocisecurity import effective_capabilities, parse_security_opts
from reconciler.core.ociusers import ExecUser

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def cgroups_path(container_id: str) -> str:
    """runc's linux.cgroupsPath (cgroupfs driver): /sys/fs/cgroup/<ctrl>/docker-mini/<id>."""
    return f"/docker-mini/{container_id}"


def build_config(*, container_id: str, process: ProcessSpec, exec_user: ExecUser, rootfs: str,
                 read_only: bool = False, tty: bool = False, cap_add: list[str] = (),
                 cap_drop: list[str] = (), security_opt: list[str] = (), ulimits: list[str] = (),
                 host_rlimits: dict[str, int] | None = None, resources: dict | None = None,
                 network: str = "new", netns_path: str | None = None,
                 mounts: MountPlan | None = None, cgroup_v2: bool = False,
                 arch: str = "x86_64") -> dict:
    """network: "new" (a fresh namespace, or netns_path when given: the prepared one) or "host"."""
    caps = effective_capabilities(list(cap_add), list(cap_drop))
    sec = parse_security_opts(list(security_opt))
    mounts = mounts or MountPlan()

    namespaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if network != "host":
        ns: dict[str, Any] = {"type": "network"}
        if netns_path:
            ns["path"] = netns_path
        namespaces.append(ns)
    if cgroup_v2:
        namespaces.append({"type": "cgroup"})

    user_mounts: list[dict] = []
    for vol, dest in mounts.volumes:
        # "ro" alone remounts only the top of the rbind tree read-only: the source's submounts
        # would stay writable. runc 1.1's "rro" sets MOUNT_ATTR_RDONLY on the whole tree
        # (mount_setattr with AT_RECURSIVE, as Docker 25+ does for :ro).
        user_mounts.append({"destination": dest, "type": "bind", "source": vol.source,
                            "options": ["rbind", "rprivate"] + (["ro", "rro"] if vol.read_only else [])})
    for tmp, dest in mounts.tmpfs:
        opts = list(tmp.options)
        base = [o for o in ("nosuid", "nodev", "noexec") if not (o == "noexec" and "exec" in opts)]
        user_mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                            "options": base + [o for o in opts if o not in base]})
    user_mounts.sort(key=lambda m: m["destination"].count("/"))
    taken = {m["destination"] for m in user_mounts}
    # as Docker: with --read-only, /etc/hosts, hostname and resolv.conf are read-only too
    etc = [{"destination": d, "type": "bind", "source": src,
            "options": ["rbind", "rprivate"] + (["ro"] if read_only else [])}
           for d, src in sorted(mounts.etc_files.items()) if d not in taken]
    all_mounts = [m for m in default_mounts(cgroup_v2) if m["destination"] not in taken] + etc + user_mounts

    resources = dict(resources or {})
    resources["devices"] = [{"allow": False, "access": "rwm"}]

    user: dict[str, Any] = {"uid": exec_user.uid, "gid": exec_user.gid}
    if exec_user.additional_gids:
        user["additionalGids"] = list(exec_user.additional_gids)
    env = list(process.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={exec_user.home}")

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path(container_id),
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    if network != "host":
        linux["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0",
                           "net.ipv4.ping_group_range": "0 2147483647"}
    if sec.seccomp:
        linux["seccomp"] = seccomp.default_profile(caps, arch)

    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": bool(tty),
            "user": user,
            "args": list(process.args),
            "env": env,
            "cwd": process.cwd,
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "rlimits": rlimits(list(ulimits), host_rlimits or {}),
            "noNewPrivileges": sec.no_new_privileges,
        },
        "root": {"path": rootfs, "readonly": bool(read_only)},
        "hostname": process.hostname,
        "mounts": all_mounts,
        "linux": linux,
    }
