"""A container's /etc/resolv.conf, derived from the host's."""

from __future__ import annotations

import ipaddress

from reconciler.core.errors import InvalidArgument

# No nameserver left after dropping loopback ones: the container would have no DNS at all.
# Docker falls back to Google's 8.8.8.8/8.8.4.4; we do the same so a container behaves as under
# Docker on a host with real connectivity. (Nothing is contacted when the file is written.)
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def render_resolv_conf(host_text: str) -> str:
    """The host's resolv.conf minus loopback nameservers (unreachable from the container's netns)
    and IPv6 ones (our containers have no IPv6 route); malformed ones are dropped too."""
    out: list[str] = []
    kept = 0
    for line in host_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "nameserver" and len(fields) > 1:
            try:
                ip = ipaddress.IPv4Address(fields[1])
            except ValueError:
                continue
            if ip.is_loopback:
                continue
            kept += 1
        out.append(line)
    if not kept:
        out.append("# no usable nameserver on the host (only loopback ones): Docker's fallback")
        out.extend(f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS)
    return "\n".join(out).rstrip("\n") + "\n"


def check_dns(servers) -> list[str]:
    out = []
    for s in servers:
        try:
            out.append(str(ipaddress.ip_address(s.strip())))
        except ValueError:
            raise InvalidArgument(f"--dns {s!r}: not an IP address") from None
    return out


def with_overrides(text: str, nameservers=(), search=()) -> str:
    """--dns replaces the nameservers, --dns-search the search domains ("." clears them)."""
    lines = text.splitlines()
    if nameservers:
        lines = [line for line in lines if not line.split()[:1] == ["nameserver"] and not line.startswith("# no usable")]
        lines += [f"nameserver {ns}" for ns in nameservers]
    if search:
        lines = [line for line in lines if line.split()[:1] not in (["search"], ["domain"])]
        domains = [d for d in search if d != "."]
        if domains:
            lines.insert(0, "search " + " ".join(domains))
    return "\n".join(lines).rstrip("\n") + "\n"
