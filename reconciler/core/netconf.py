"""Networking arithmetic and text, with no I/O: addresses, MACs, IPAM, port specs, the nftables
ruleset, /etc/hosts and /etc/resolv.conf.

Everything here is a pure function of its arguments so it can be tested from tables.

Every `run` imports this module (for /etc/hosts and /etc/resolv.conf), so it imports nothing
costly at load: plain record classes instead of dataclasses, typing only for type checkers,
no regex compiled, and ipaddress (~1.5 ms) imported only by the functions that need its
networks; a single dotted-quad address is read by core.ipv4.
"""

from __future__ import annotations

from reconciler.core.errors import ConflictError, InvalidArgument, NetworkError
from reconciler.core.ipv4 import parse_ipv4
from reconciler.core.record import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress
    from typing import Callable, Iterable, Mapping

MODES = ("bridge", "none", "host")  # plus "container:NAME"

# Names on the host, derived from the container id so a later command can find what a killed
# one left behind. Interface names are at most 15 characters.
NETNS_PREFIX = "dm-"
VETH_PREFIX = "vdm"


def netns_name(container_id: str) -> str:
    return NETNS_PREFIX + container_id[:32]


def host_veth_name(container_id: str) -> str:
    return VETH_PREFIX + container_id[:10]


def table_name(bridge: str) -> str:
    """Our nftables table is named after the bridge, so two bridges (test runs) never collide."""
    return f"dm-{bridge}"


# ---------------------------------------------------------------------------------------------
# network modes


class NetworkMode(FrozenRecord):
    __slots__ = ("kind", "container")

    def __init__(self, kind: str, container: str | None = None):
        # kind: "bridge" | "none" | "host" | "container"; container: the other container's
        # name or id for kind == "container"
        self._set(kind, container)

    def __str__(self) -> str:
        return f"container:{self.container}" if self.kind == "container" else self.kind


def parse_network_mode(text: str | None) -> NetworkMode:
    text = (text or "bridge").strip()
    if text == "default":
        text = "bridge"
    if text in MODES:
        return NetworkMode(text)
    if text.startswith("container:"):
        other = text.split(":", 1)[1]
        if not other:
            raise InvalidArgument("--network container: needs a container name or id (container:NAME)")
        return NetworkMode("container", other)
    raise InvalidArgument(f"--network {text!r}: unknown network mode",
                          hint="use bridge, none, host or container:NAME")


# ---------------------------------------------------------------------------------------------
# subnets and addresses


class Subnet(FrozenRecord):
    __slots__ = ("network",)

    def __init__(self, network: ipaddress.IPv4Network):
        self._set(network)

    @classmethod
    def parse(cls, text: str) -> "Subnet":
        import ipaddress
        try:
            net = ipaddress.IPv4Network(text, strict=True)
        except ValueError as e:
            raise NetworkError(f"bridge subnet {text!r}: {e}") from None
        if net.prefixlen > 30:
            raise NetworkError(f"bridge subnet {net} is too small for containers")
        return cls(net)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def check_container_ip(self, text: str) -> ipaddress.IPv4Address:
        """A usable container address: inside the subnet, not network, gateway or broadcast."""
        import ipaddress
        try:
            ip = ipaddress.IPv4Address(text.strip())
        except ValueError:
            raise InvalidArgument(f"--ip {text!r}: not an IPv4 address") from None
        if ip not in self.network:
            raise InvalidArgument(f"--ip {ip}: outside the bridge subnet {self.network}")
        if ip == self.network.network_address:
            raise InvalidArgument(f"--ip {ip}: is the network address of {self.network}")
        if ip == self.network.broadcast_address:
            raise InvalidArgument(f"--ip {ip}: is the broadcast address of {self.network}")
        if ip == self.gateway:
            raise InvalidArgument(f"--ip {ip}: is the bridge's gateway address")
        return ip

    def allocate(self, taken: Iterable[str]) -> ipaddress.IPv4Address:
        """The lowest free container address (IPAM). `taken` are the current leases."""
        import ipaddress
        used = {ipaddress.IPv4Address(t) for t in taken}
        first = int(self.gateway) + 1
        last = int(self.network.broadcast_address) - 1
        for n in range(first, last + 1):
            ip = ipaddress.IPv4Address(n)
            if ip not in used:
                return ip
        raise NetworkError(f"no free address left in {self.network}",
                           hint="remove unused containers or configure a larger bridge-subnet")


def overlapping(subnet: ipaddress.IPv4Network, host_networks: Iterable[tuple[str, str]]) -> list[str]:
    """The host's routes/addresses (description, cidr) that overlap the subnet."""
    import ipaddress
    hits = []
    for what, cidr in host_networks:
        try:
            other = ipaddress.IPv4Network(cidr, strict=False)
        except ValueError:
            continue
        if other.prefixlen == 0:
            continue  # the default route overlaps everything by definition
        if subnet.overlaps(other):
            hits.append(f"{what} {other}")
    return hits


# ---------------------------------------------------------------------------------------------
# MAC addresses

_MAC_PATTERN = r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$"


def check_mac(text: str) -> str:
    """A unicast, non-zero MAC in canonical lower-case colon form."""
    import re  # compiled on first use (re caches it), not at import
    t = text.strip()
    if not re.match(_MAC_PATTERN, t):
        raise InvalidArgument(f"--mac-address {text!r}: not a MAC address (expected xx:xx:xx:xx:xx:xx)")
    octets = [int(p, 16) for p in re.split("[:-]", t)]
    if octets[0] & 1:
        raise InvalidArgument(f"--mac-address {text!r}: is a multicast address "
                              "(the lowest bit of the first octet is set)")
    if not any(octets):
        raise InvalidArgument(f"--mac-address {text!r}: the all-zero address is not usable")
    return ":".join(f"{o:02x}" for o in octets)


def mac_for_ip(ip: str | ipaddress.IPv4Address) -> str:
    """Docker's derived MAC: 02:42 followed by the four octets of the IPv4 address."""
    import ipaddress
    packed = ipaddress.IPv4Address(str(ip)).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


class Lease(FrozenRecord):
    """Another container's address and MAC on the bridge."""
    __slots__ = ("name", "ip", "mac")

    def __init__(self, name: str, ip: str, mac: str):
        self._set(name, ip, mac)


def choose_address(subnet: Subnet, leases: Iterable[Lease], ip_text: str | None = None,
                   mac_text: str | None = None) -> tuple[ipaddress.IPv4Address, str]:
    """The (ip, mac) for a new container: the ones asked for, checked against the other leases,
    or the lowest free address and its derived MAC."""
    leases = list(leases)
    by_ip = {lease.ip: lease.name for lease in leases}
    by_mac = {lease.mac: lease.name for lease in leases}
    mac = check_mac(mac_text) if mac_text else None
    if ip_text:
        ip = subnet.check_container_ip(ip_text)
        if str(ip) in by_ip:
            raise ConflictError(f"--ip {ip}: address already used by container {by_ip[str(ip)]!r}")
    else:
        taken = set(by_ip)
        if mac is None:
            # an address whose derived MAC another container holds (given statically) is skipped
            taken |= {ip for m in by_mac if (ip := _ip_of_derived_mac(m))}
        ip = subnet.allocate(taken)
    if mac is None:
        mac = mac_for_ip(ip)
        if mac in by_mac:
            raise ConflictError(f"--ip {ip}: its MAC {mac} is already used by container {by_mac[mac]!r}",
                                hint="give this container a --mac-address of its own")
    elif mac in by_mac:
        raise ConflictError(f"--mac-address {mac}: already used by container {by_mac[mac]!r}")
    return ip, mac


def _ip_of_derived_mac(mac: str) -> str | None:
    octets = mac.split(":")
    if octets[:2] != ["02", "42"]:
        return None
    return ".".join(str(int(o, 16)) for o in octets[2:])


# ---------------------------------------------------------------------------------------------
# published ports


class PortMapping(FrozenRecord):
    __slots__ = ("host_ip", "host_port", "container_port", "proto")

    def __init__(self, host_ip: str, host_port: int, container_port: int, proto: str = "tcp"):
        self._set(host_ip, host_port, container_port, proto)     # host_ip "": every host address

    @property
    def key(self) -> str:
        """Docker's NetworkSettings.Ports key."""
        return f"{self.container_port}/{self.proto}"

    def to_dict(self) -> dict:
        return {"host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port, "proto": self.proto}

    @classmethod
    def from_dict(cls, d: Mapping) -> "PortMapping":
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
            if parse_ipv4(host_ip) is None:
                raise InvalidArgument(f"-p {spec!r}: {host_ip!r} is not an IPv4 host address")
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


# ---------------------------------------------------------------------------------------------
# nftables ruleset


class Endpoint(FrozenRecord):
    """A running container on the bridge, as the ruleset and the hosts files need it."""
    __slots__ = ("container_id", "ip", "ports")

    def __init__(self, container_id: str, ip: str, ports: tuple[PortMapping, ...] = ()):
        self._set(container_id, ip, ports)


def render_ruleset(bridge: str, subnet: str, endpoints: Iterable[Endpoint]) -> str:
    """The whole of our table, for `nft -f`: delete and re-add in one transaction.

    - nat postrouting: masquerade the subnet going out of any interface but the bridge, and
      traffic to published ports that arrives from the host's loopback (127.0.0.1 DNATed to a
      container would otherwise leave with a 127.x source the container cannot answer), and
      a container's connection to a published port DNATed back onto the bridge (hairpin: the
      answer must come back through the host, not straight from the peer).
    - nat prerouting: DNAT published ports for traffic arriving from outside or from containers,
      except ports published on a loopback address (see _loopback).
    - nat output: the same DNAT, loopback ones included, for connections the host itself makes
      (to 127.0.0.1 or its own addresses); route_localnet on the bridge lets the 127.0.0.1
      source through until postrouting masquerades it.
    - filter forward: accept what leaves the bridge, replies, and DNATed published ports, so a
      host whose forward policy is drop still passes container traffic; drop anything else
      headed into the bridge, so a neighbour routing the subnet via this host (ip_forward is on)
      reaches only published ports. The policy stays accept: traffic not touching our bridge is
      the host's business, not ours.
    """
    table = table_name(bridge)
    dnat: list[str] = []      # prerouting: traffic from other hosts and from containers
    local: list[str] = []     # output: connections the host itself makes
    for ep in sorted(endpoints, key=lambda e: e.ip):
        for m in ep.ports:
            match = f"ip daddr {m.host_ip} " if m.host_ip else "fib daddr type local "
            rule = f"{match}{m.proto} dport {m.host_port} dnat to {ep.ip}:{m.container_port}"
            local.append(rule)
            if not _loopback(m.host_ip):
                dnat.append(rule)
    lines = [
        f"table ip {table}",
        f"delete table ip {table}",
        f"table ip {table} {{",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        *(f"    {r}" for r in dnat),
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        *(f"    {r}" for r in local),
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        f'    ip saddr {subnet} oifname != "{bridge}" masquerade',
        f'    ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade',
        f'    ip saddr {subnet} oifname "{bridge}" ct status dnat masquerade',
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f'    iifname "{bridge}" accept',
        f'    oifname "{bridge}" ct state established,related accept',
        f'    oifname "{bridge}" ct status dnat accept',
        f'    oifname "{bridge}" drop',
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _loopback(host_ip: str) -> bool:
    """A port published on 127.x is for this host's own clients only. DNATing it in prerouting
    too would let a neighbour on the same link send dst=127.0.0.1:port to our NIC and reach the
    container (the CVE-2020-8558 class): prerouting runs before the kernel's martian check on
    the destination, which the DNAT has already rewritten. Host-local connections are NATed in
    output, so leaving these out of prerouting is enough; no host-wide drop of 127/8 is needed."""
    ip = parse_ipv4(host_ip)        # "" (every address) is None; parse_port_spec allows IPv4 only
    return ip is not None and ip >> 24 == 127


def render_delete_table(bridge: str) -> str:
    table = table_name(bridge)
    # "table ..." first makes the delete succeed when the table is already gone.
    return f"table ip {table}\ndelete table ip {table}\n"


# ---------------------------------------------------------------------------------------------
# /etc/hosts and /etc/resolv.conf

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)


class HostEntry(FrozenRecord):
    __slots__ = ("ip", "names")

    def __init__(self, ip: str, names: tuple[str, ...]):
        self._set(ip, names)


def render_hosts(own: HostEntry | None, peers: Iterable[HostEntry] = (), hostname: str | None = None) -> str:
    """A container's /etc/hosts: localhost, itself, then each peer on the network.

    `own` is None without an address of its own (--network none): the hostname then maps to
    127.0.0.1, so `hostname -i` and resolvers still find it.
    """
    lines = list(LOCALHOST_LINES)
    if own is not None:
        lines.append(f"{own.ip}\t{' '.join(_dedup(own.names))}")
    elif hostname:
        lines.append(f"127.0.0.1\t{hostname}")
    peers = list(peers)
    if peers:
        import ipaddress
        peers.sort(key=lambda e: ipaddress.IPv4Address(e.ip))
    for p in peers:
        names = _dedup(p.names)
        if names:
            lines.append(f"{p.ip}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def _dedup(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


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
        fields_ = line.split()
        if fields_ and fields_[0] == "nameserver" and len(fields_) > 1:
            ip = parse_ipv4(fields_[1])
            if ip is None or ip >> 24 == 127:
                continue
            kept += 1
        out.append(line)
    if not kept:
        out.append("# no usable nameserver on the host (only loopback ones): Docker's fallback")
        out.extend(f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS)
    return "\n".join(out).rstrip("\n") + "\n"
