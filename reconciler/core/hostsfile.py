"""A container's /etc/hosts: localhost, itself, then each peer on its network."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.errors import InvalidArgument

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


def parse_add_host(text: str) -> tuple[str, str]:
    """--add-host NAME:IP (Docker also takes NAME=IP) as (name, ip)."""
    name, sep, ip = text.partition("=") if "=" in text else text.partition(":")
    name, ip = name.strip(), ip.strip()
    try:
        ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        raise InvalidArgument(f"--add-host {text!r}: expected HOST:IP with an IP address") from None
    if not sep or not name or any(c.isspace() for c in name) or "#" in name:
        raise InvalidArgument(f"--add-host {text!r}: expected HOST:IP")
    return name, ip.strip("[]")


def with_extra_hosts(text: str, extra: Iterable[tuple[str, str]]) -> str:
    """The hosts file with --add-host's lines appended (as Docker appends them)."""
    lines = [f"{ip}\t{name}" for name, ip in extra]
    return text if not lines else text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
