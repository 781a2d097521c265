"""A container's /etc/hosts: localhost, itself, then each peer on its network."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)


@dataclass(frozen=True)
class HostEntry:
    ip: str
    names: tuple[str, ...]


def render_hosts(own: HostEntry | None, peers: Iterable[HostEntry] = (), hostname: str | None = None) -> str:
    """`own` is None without an address of its own (--network none): the hostname then maps to
    127.0.0.1, so `hostname -i` and resolvers still find it."""
    lines = list(LOCALHOST_LINES)
    if own is not None:
        lines.append(f"{own.ip}\t{' '.join(_dedup(own.names))}")
    elif hostname:
        lines.append(f"127.0.0.1\t{hostname}")
    for p in sorted(peers, key=lambda e: ipaddress.IPv4Address(e.ip)):
        names = _dedup(p.names)
        if names:
            lines.append(f"{p.ip}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def _dedup(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n))
