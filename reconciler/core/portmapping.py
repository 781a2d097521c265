"""Published ports: Docker's -p syntax, host-port choice and conflicts between containers."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from reconciler.core.errors import ConflictError, InvalidArgument, NetworkError


@dataclass(frozen=True)
class PortMapping:
    host_ip: str            # "": every host address
    host_port: int          # 0: the engine picks a free one
    container_port: int
    proto: str = "tcp"

    @property
    def key(self) -> str:
        """Docker's NetworkSettings.Ports key."""
        return f"{self.container_port}/{self.proto}"

    def to_dict(self) -> dict:
        return {"host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port, "proto": self.proto}

    @classmethod
    def from_dict(cls, d: Mapping) -> PortMapping:
        return cls(d.get("host_ip", ""), int(d["host_port"]), int(d["container_port"]),
                   d.get("proto", "tcp"))

    def __str__(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip else ""
        return f"{host}{self.host_port}->{self.container_port}/{self.proto}"


def _port_range(text: str, spec: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise InvalidArgument(f"-p {spec!r}: {text!r} is not a port number") from None
    if not (1 <= a <= 65535 and 1 <= b <= 65535):
        raise InvalidArgument(f"-p {spec!r}: ports must be between 1 and 65535")
    if b < a:
        raise InvalidArgument(f"-p {spec!r}: range {text} runs backwards")
    return list(range(a, b + 1))


def parse_port_spec(spec: str) -> list[PortMapping]:
    """Docker's -p: [hostip:][hostport:]containerport[/tcp|udp], ranges as a-b on both sides.

    Without a host port (-p 80, -p 127.0.0.1::80) the host port is 0: the engine picks a free
    one (see with_host_ports) and keeps it in the lease.
    """
    s = spec.strip()
    proto = "tcp"
    if "/" in s:
        s, proto = s.rsplit("/", 1)
        proto = proto.lower()
        if proto not in ("tcp", "udp"):
            raise InvalidArgument(f"-p {spec!r}: protocol must be tcp or udp, not {proto!r}")
    host_ip = ""
    if s.startswith("["):
        raise InvalidArgument(f"-p {spec!r}: IPv6 host addresses are not supported")
    parts = s.split(":")
    if len(parts) == 3:
        host_ip, host, ctr = parts
        if host_ip:
            try:
                ipaddress.IPv4Address(host_ip)
            except ValueError:
                raise InvalidArgument(f"-p {spec!r}: {host_ip!r} is not an IPv4 host address") from None
            if host_ip == "0.0.0.0":
                host_ip = ""
    elif len(parts) == 2:
        host, ctr = parts
    elif len(parts) == 1:
        host, ctr = "", parts[0]
    else:
        raise InvalidArgument(f"-p {spec!r}: expected [hostip:][hostport:]containerport[/tcp|udp]")
    ctrs = _port_range(ctr, spec)
    if not host:
        return [PortMapping(host_ip, 0, c, proto) for c in ctrs]
    hosts = _port_range(host, spec)
    if len(ctrs) == 1 and len(hosts) > 1:
        raise InvalidArgument(f"-p {spec!r}: a host port range needs a container port range of the same size")
    if len(hosts) != len(ctrs):
        raise InvalidArgument(f"-p {spec!r}: host and container port ranges differ in size")
    return [PortMapping(host_ip, h, c, proto) for h, c in zip(hosts, ctrs)]


def parse_ports(specs: Iterable[str]) -> list[PortMapping]:
    out: list[PortMapping] = []
    for spec in specs:
        for m in parse_port_spec(spec):
            for prev in out:
                if _clash(prev, m):
                    raise InvalidArgument(f"-p {spec!r}: host port {m.host_port}/{m.proto} is given twice")
            out.append(m)
    return out


def _clash(a: PortMapping, b: PortMapping) -> bool:
    return (a.proto == b.proto and a.host_port == b.host_port and a.host_port != 0
            and (not a.host_ip or not b.host_ip or a.host_ip == b.host_ip))


def with_host_ports(wanted: Iterable[PortMapping], candidates: Callable[[PortMapping], Iterable[int]],
                    published: Iterable[PortMapping]) -> list[PortMapping]:
    """Give each mapping without a host port (0) the first of its candidate ports that nobody
    publishes (`published`, plus the mappings already decided)."""
    taken = list(published)
    out: list[PortMapping] = []
    for m in wanted:
        if m.host_port == 0:
            for port in candidates(m):
                chosen = PortMapping(m.host_ip, port, m.container_port, m.proto)
                if not any(_clash(chosen, t) for t in taken):
                    m = chosen
                    break
            else:
                raise NetworkError(f"no free host port left to publish {m.key}")
        taken.append(m)
        out.append(m)
    return out


def check_port_conflicts(wanted: Iterable[PortMapping],
                         published: Mapping[str, Iterable[PortMapping]]) -> None:
    """Refuse a host port another container (name -> its mappings) already publishes."""
    for m in wanted:
        for owner, theirs in published.items():
            for t in theirs:
                if _clash(m, t):
                    where = f"{m.host_ip or '0.0.0.0'}:{m.host_port}/{m.proto}"
                    raise ConflictError(f"port {where} is already published by container {owner!r}",
                                        hint="choose another host port or remove that container")


def with_exposed(specs: Iterable[str], exposed: Iterable[str] | None) -> list[str]:
    """-P: the -p specs plus every port the image exposes ("80/tcp") that no -p publishes yet,
    each on a host port the engine picks."""
    specs = list(specs)
    published = {m.key for m in parse_ports(specs)}
    for key in sorted(exposed or ()):
        port, _, proto = key.partition("/")
        proto = (proto or "tcp").lower()
        if not port.isdigit() or proto not in ("tcp", "udp") or f"{port}/{proto}" in published:
            continue        # sctp and malformed keys are not ours to publish
        specs.append(f"{port}/{proto}")
    return specs
