"""Resource limits for the OCI config: --ulimit parsing and process.rlimits clamped to the host. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.errors import InvalidArgument

DEFAULT_NOFILE = 1048576

RLIMITS = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}
RLIM_INFINITY = (1 << 64) - 1


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
