"""Capabilities and --security-opt for the OCI config: Docker's default set, --cap-add/--cap-drop,
no-new-privileges and seccomp. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.errors import InvalidArgument

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
