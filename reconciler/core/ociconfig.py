"""The OCI runtime config.json of a container: image config + user options -> runc's bundle config.

Pure: everything read from disk (the rootfs's /etc/passwd and /etc/group, the host's rlimits, the
resolved mount destinations) is passed in. Docker's defaults throughout: namespaces, mounts,
capabilities, masked paths, seccomp.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.core import seccomp
from reconciler.core.errors import InvalidArgument

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_STOP_SIGNAL = "SIGTERM"
DEFAULT_STOP_TIMEOUT = 10
DEFAULT_NOFILE = 1048576

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

RLIMITS = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}
RLIM_INFINITY = (1 << 64) - 1

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31,
}


# --- small parsers (used at create to fail early, and here) -------------------------------

def parse_signal(value: str | int) -> int:
    """'SIGTERM', 'TERM', 'term', '15', 'RTMIN+3' -> signal number (Docker's spellings)."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        n = int(text)
        if 1 <= n <= 64:
            return n
        raise InvalidArgument(f"invalid signal: {value}")
    name = text.upper().removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    m = re.fullmatch(r"RTMIN(?:\+(\d+))?|RTMAX(?:-(\d+))?", name)
    if m:
        n = 34 + int(m.group(1) or 0) if name.startswith("RTMIN") else 64 - int(m.group(2) or 0)
        if 34 <= n <= 64:
            return n
    raise InvalidArgument(f"invalid signal: {value}")


def normalize_capability(name: str) -> str:
    cap = name.strip().upper()
    if cap == "ALL":
        return cap
    if not cap.startswith("CAP_"):
        cap = "CAP_" + cap
    if cap not in ALL_CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return cap


def effective_capabilities(cap_add: list[str], cap_drop: list[str]) -> list[str]:
    """Docker's rule: start from the default set; ALL in --cap-add grants every capability,
    ALL in --cap-drop removes every one not explicitly added; otherwise drops apply, then adds."""
    adds = {normalize_capability(c) for c in cap_add}
    drops = {normalize_capability(c) for c in cap_drop}
    if "ALL" in adds:
        caps = set(ALL_CAPABILITIES) - drops
    elif "ALL" in drops:
        caps = adds
    else:
        caps = (set(DEFAULT_CAPABILITIES) - drops) | adds
    return [c for c in ALL_CAPABILITIES if c in caps]


@dataclass(frozen=True)
class Ulimit:
    name: str           # "nofile"
    soft: int
    hard: int


def _limit_value(text: str, spec: str) -> int:
    text = text.strip()
    if text in ("-1", "unlimited"):
        return RLIM_INFINITY
    if not (text.isascii() and text.isdigit()):
        raise InvalidArgument(f"invalid ulimit {spec!r}: {text!r} is not a number")
    return int(text)


def parse_ulimit(spec: str) -> Ulimit:
    """Docker's --ulimit name=soft[:hard]."""
    name, sep, values = spec.partition("=")
    name = name.strip().lower()
    if not sep or not values:
        raise InvalidArgument(f"invalid ulimit {spec!r}: expected name=soft[:hard], e.g. nofile=1024:2048")
    if name not in RLIMITS:
        raise InvalidArgument(f"invalid ulimit {spec!r}: unknown name {name!r}",
                              hint="known: " + ", ".join(sorted(RLIMITS)))
    soft_text, _, hard_text = values.partition(":")
    soft = _limit_value(soft_text, spec)
    hard = _limit_value(hard_text, spec) if hard_text else soft
    if soft > hard:
        raise InvalidArgument(f"invalid ulimit {spec!r}: soft limit {soft} is above hard limit {hard}")
    return Ulimit(name, soft, hard)


@dataclass(frozen=True)
class SecurityOptions:
    no_new_privileges: bool = False
    seccomp: bool = True


def parse_security_opts(opts: list[str]) -> SecurityOptions:
    nnp, sec = False, True
    for raw in opts:
        opt = raw.strip()
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        key = key.strip()
        if key == "no-new-privileges":
            if value in ("", "true"):
                nnp = True
            elif value == "false":
                nnp = False
            else:
                raise InvalidArgument(f"invalid --security-opt {raw!r}: no-new-privileges takes true or false")
        elif key == "seccomp":
            if value == "unconfined":
                sec = False
            elif value in ("", "default", "builtin"):
                sec = True
            else:
                raise InvalidArgument(f"invalid --security-opt {raw!r}: only seccomp=unconfined "
                                      f"or the default profile are supported")
        elif key in ("label", "apparmor"):
            continue  # no LSM on this engine: accepted and ignored, as Docker does without one
        else:
            raise InvalidArgument(f"invalid --security-opt {raw!r}",
                                  hint="supported: no-new-privileges, seccomp=unconfined")
    return SecurityOptions(nnp, sec)


@dataclass(frozen=True)
class Volume:
    source: str             # absolute host path ("" for a named volume until the engine resolves it)
    destination: str        # absolute container path (normalized, not yet resolved)
    read_only: bool = False
    name: str | None = None  # a named volume (<root>/volumes/NAME/_data), else a bind mount


def parse_volume(spec: str) -> Volume:
    """-v /host:/ctr[:ro|rw] (a bind mount) or -v NAME:/ctr[:ro|rw] (a named volume)"""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume {spec!r}: expected /host/path:/container/path[:ro] "
                              f"or NAME:/container/path[:ro]")
    source, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    name = None
    if not source.startswith("/"):
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", source):
            raise InvalidArgument(f'invalid volume {spec!r}: "{source}" includes invalid characters for a '
                                  f'local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. '
                                  f'If you intended to pass a host directory, use absolute path')
        name, source = source, ""
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid volume {spec!r}: the destination must be an absolute path")
    flags = set(mode.split(",")) - {"z", "Z"}
    if not flags <= {"ro", "rw"} or flags == {"ro", "rw"}:
        raise InvalidArgument(f"invalid volume {spec!r}: mode must be ro or rw")
    dest = posixpath.normpath(dest)
    if dest == "/":
        raise InvalidArgument(f"invalid volume {spec!r}: cannot mount over /")
    return Volume(posixpath.normpath(source) if source else "", dest, "ro" in flags, name)


def parse_mount(text: str) -> tuple[str, str]:
    """--mount type=volume|bind|tmpfs,source=...,target=...[,readonly][,tmpfs-size=..][,tmpfs-mode=..]
    as ("volume" | "bind", "SOURCE:/ctr[:ro]") or ("tmpfs", "/ctr[:size=..,mode=..]")."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.strip().partition("=")
        key = key.lower()
        if not key:
            continue
        if key in ("readonly", "ro") and not eq:
            value = "true"
        elif not eq:
            raise InvalidArgument(f"invalid --mount {text!r}: invalid field {key!r} must be a key=value pair")
        fields[{"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}.get(key, key)] = value
    kind = fields.pop("type", "volume")
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidArgument(f"invalid --mount {text!r}: type {kind!r} is not supported (volume, bind, tmpfs)")
    target = fields.pop("target", "")
    if not target:
        raise InvalidArgument(f"invalid --mount {text!r}: target is required")
    readonly = fields.pop("readonly", "false").lower()
    if readonly not in ("true", "1", "false", "0"):
        raise InvalidArgument(f"invalid --mount {text!r}: readonly={readonly} is not true or false")
    source = fields.pop("source", "")
    if kind == "tmpfs":
        if source:
            raise InvalidArgument(f"invalid --mount {text!r}: a tmpfs takes no source")
        opts = []
        if "tmpfs-size" in fields:
            opts.append(f"size={fields.pop('tmpfs-size')}")
        if "tmpfs-mode" in fields:
            opts.append(f"mode={fields.pop('tmpfs-mode')}")
        spec = target + (":" + ",".join(opts) if opts else "")
    else:
        if not source:
            raise InvalidArgument(f"invalid --mount {text!r}: anonymous volumes are not supported: "
                                  "give a source (a volume name or, with type=bind, a host path)")
        if kind == "bind" and not source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {text!r}: a bind source must be an absolute path")
        if kind == "volume" and source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {text!r}: a volume source is a volume name (type=bind for a path)")
        spec = f"{source}:{target}" + (":ro" if readonly in ("true", "1") else "")
    if fields:
        raise InvalidArgument(f"invalid --mount {text!r}: {', '.join(sorted(fields))} not supported")
    return ("tmpfs" if kind == "tmpfs" else "volume"), spec


@dataclass(frozen=True)
class Tmpfs:
    destination: str
    options: tuple[str, ...] = ()


def parse_tmpfs(spec: str) -> Tmpfs:
    """--tmpfs /path[:size=64m,mode=1777,...]"""
    dest, _, opts = spec.partition(":")
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid --tmpfs {spec!r}: the path must be absolute")
    dest = posixpath.normpath(dest)
    if dest == "/":
        raise InvalidArgument(f"invalid --tmpfs {spec!r}: cannot mount over /")
    options = tuple(o.strip() for o in opts.split(",") if o.strip()) if opts else ()
    for o in options:
        if not re.fullmatch(r"[a-z_]+(=[\w.%]+)?", o):
            raise InvalidArgument(f"invalid --tmpfs {spec!r}: bad option {o!r}")
    return Tmpfs(dest, options)


# --- users -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _parse_db(text: str | None, fields_min: int) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields_min:
            rows.append(parts)
    return rows


def _is_id(text: str) -> bool:
    """A uid or gid as passwd, group and -u write them: ASCII digits, below 2^32."""
    return text.isascii() and text.isdigit() and int(text) < 1 << 32


def resolve_user(user: str | None, passwd: str | None, group: str | None) -> ExecUser:
    """Docker's -u semantics: "", "name", "uid", "name:group", "uid:gid" against the rootfs files."""
    spec = (user or "").strip()
    user_part, _, group_part = spec.partition(":")
    users = _parse_db(passwd, 7)
    groups = _parse_db(group, 4)

    uid, gid, home, name = 0, 0, "/", None
    entry = None
    if user_part == "" or _is_id(user_part):
        uid = int(user_part or 0)
        entry = next((u for u in users if _is_id(u[2]) and int(u[2]) == uid), None)
    else:
        entry = next((u for u in users if u[0] == user_part), None)
        if entry is None:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
    if entry is not None:
        if not _is_id(entry[2]):
            raise InvalidArgument(f"the container's /etc/passwd entry for {entry[0]!r} has a "
                                  f"non-numeric uid {entry[2]!r}")
        name = entry[0]
        uid = int(entry[2])
        gid = int(entry[3]) if _is_id(entry[3]) else 0
        home = entry[5] or "/"
    if group_part:
        if _is_id(group_part):
            gid = int(group_part)
        else:
            g = next((g for g in groups if g[0] == group_part), None)
            if g is None or not _is_id(g[2]):
                raise InvalidArgument(f"unable to find group {group_part}: no matching entries in group file")
            gid = int(g[2])
    extra: list[int] = []
    if name is not None:
        for g in groups:
            members = [m.strip() for m in g[3].split(",") if m.strip()]
            if name in members and _is_id(g[2]) and int(g[2]) != gid and int(g[2]) not in extra:
                extra.append(int(g[2]))
    return ExecUser(uid, gid, tuple(extra), home)


# --- the process -------------------------------------------------------------------------

@dataclass
class ProcessSpec:
    args: list[str]
    env: list[str]
    cwd: str
    user: str                   # as asked ("" = image default root)
    hostname: str
    stop_signal: str
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Later entries replace earlier ones with the same key, keeping the first position."""
    out: dict[str, str] = {}
    for item in [*base, *overrides]:
        out[_env_key(item)] = item
    return list(out.values())


_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?")


def is_hostname(host: str) -> bool:
    """Letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63."""
    return _HOSTNAME.fullmatch(host) is not None


def process_spec(image_config: dict, *, container_id: str, command: list[str] | None,
                 entrypoint: list[str] | None, env: list[str], workdir: str | None,
                 user: str | None, hostname: str | None, stop_signal: str | None,
                 tty: bool) -> ProcessSpec:
    """What runs, with which env, where: the image config with the user's overrides (Docker's rules)."""
    cfg = image_config.get("config") or image_config.get("Config") or {}
    img_entry = list(cfg.get("Entrypoint") or [])
    img_cmd = list(cfg.get("Cmd") or [])
    if entrypoint is not None:
        entry = list(entrypoint)
        cmd = list(command) if command else []        # a new entrypoint resets the image's Cmd
    else:
        entry = img_entry
        cmd = list(command) if command else img_cmd
    args = entry + cmd
    if not args:
        raise InvalidArgument("no command specified: the image has no Entrypoint or Cmd; give a command")
    host = hostname or container_id[:12]
    if not is_hostname(host):
        raise InvalidArgument(f"invalid hostname {host!r}: letters, digits, '-' and '.', at most 63")
    base_env = list(cfg.get("Env") or [])
    if not any(_env_key(e) == "PATH" for e in [*base_env, *env]):
        base_env.insert(0, f"PATH={DEFAULT_PATH}")
    base_env.append(f"HOSTNAME={host}")
    if tty:
        base_env.append("TERM=xterm")
    merged = merge_env(base_env, env)
    cwd = workdir if workdir is not None else (cfg.get("WorkingDir") or "/")
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory {cwd!r} is invalid, it needs to be an absolute path")
    signal = stop_signal or cfg.get("StopSignal") or DEFAULT_STOP_SIGNAL
    parse_signal(signal)
    return ProcessSpec(args=args, env=merged, cwd=posixpath.normpath(cwd),
                       user=user if user is not None else (cfg.get("User") or ""),
                       hostname=host, stop_signal=signal, entrypoint=entry, cmd=cmd)


# --- paths inside the rootfs -------------------------------------------------------------

def resolve_in_rootfs(path: str, readlink: Callable[[str], str | None], max_links: int = 40) -> str:
    """The path a destination really names inside the rootfs, never outside it.

    Walks component by component; a symlink's target is followed with absolute targets taken
    relative to the rootfs and '..' clamped at its top. readlink(p) returns the target of the
    rootfs-relative absolute path p, or None when p is not a symlink (or does not exist).
    """
    pending = [c for c in path.split("/") if c not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        comp = pending.pop(0)
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = "/" + "/".join([*resolved, comp])
        target = readlink(candidate)
        if target is None:
            resolved.append(comp)
            continue
        links += 1
        if links > max_links:
            raise InvalidArgument(f"too many levels of symbolic links resolving {path!r} in the container")
        if target.startswith("/"):
            resolved = []
        pending = [c for c in target.split("/") if c not in ("", ".")] + pending
    return "/" + "/".join(resolved)


# --- the config ----------------------------------------------------------------------------

def default_mounts(cgroup_v2: bool) -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


def cgroups_path(container_id: str) -> str:
    """runc's linux.cgroupsPath (cgroupfs driver): /sys/fs/cgroup/<ctrl>/docker-mini/<id>."""
    return f"/docker-mini/{container_id}"


def _clamp(value: int, hard_limit: int | None) -> int:
    if hard_limit is None or hard_limit < 0 or hard_limit >= RLIM_INFINITY:
        return value
    return min(value, hard_limit)


def rlimits(ulimits: list[str], host_hard: dict[str, int]) -> list[dict]:
    """process.rlimits: Docker's default open-files limit and the --ulimit flags, each clamped to
    the host's current hard limit (runc cannot raise it; on some hosts not even root can)."""
    wanted: dict[str, tuple[int, int]] = {"RLIMIT_NOFILE": (DEFAULT_NOFILE, DEFAULT_NOFILE)}
    for spec in ulimits:
        u = parse_ulimit(spec)
        wanted[RLIMITS[u.name]] = (u.soft, u.hard)
    out = []
    for kind, (soft, hard) in wanted.items():
        hard = _clamp(hard, host_hard.get(kind))
        out.append({"type": kind, "soft": min(soft, hard), "hard": hard})
    return out


@dataclass
class MountPlan:
    """Mounts whose destinations were already resolved inside the rootfs by the engine."""
    volumes: list[tuple[Volume, str]] = field(default_factory=list)    # (volume, resolved dest)
    tmpfs: list[tuple[Tmpfs, str]] = field(default_factory=list)
    etc_files: dict[str, str] = field(default_factory=dict)            # "/etc/hosts" -> host file


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
