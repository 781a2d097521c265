"""IP address management on the bridge: the subnet, container addresses and MACs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.errors import ConflictError, InvalidArgument, NetworkError


@dataclass(frozen=True)
class Subnet:
    network: ipaddress.IPv4Network
    gw: ipaddress.IPv4Address | None = None     # a network's --gateway; default the first address

    @classmethod
    def parse(cls, text: str, gateway: str | None = None) -> Subnet:
        try:
            net = ipaddress.IPv4Network(text, strict=True)
        except ValueError as e:
            raise NetworkError(f"bridge subnet {text!r}: {e}") from None
        if net.prefixlen > 30:
            raise NetworkError(f"bridge subnet {net} is too small for containers")
        return cls(net, ipaddress.IPv4Address(gateway) if gateway else None)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.gw or self.network.network_address + 1

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def check_container_ip(self, text: str) -> ipaddress.IPv4Address:
        """A usable container address: inside the subnet, not network, gateway or broadcast."""
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
        """The lowest free container address. `taken` are the current leases."""
        used = {ipaddress.IPv4Address(t) for t in taken}
        used.add(self.gateway)
        first = int(self.network.network_address) + 2 if self.gw is None else int(self.network.network_address) + 1
        last = int(self.network.broadcast_address) - 1
        for n in range(first, last + 1):
            ip = ipaddress.IPv4Address(n)
            if ip not in used:
                return ip
        raise NetworkError(f"no free address left in {self.network}",
                           hint="remove unused containers or configure a larger bridge-subnet")


def overlapping(subnet: ipaddress.IPv4Network, host_networks: Iterable[tuple[str, str]]) -> list[str]:
    """The host's routes/addresses (description, cidr) that overlap the subnet."""
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


_MAC = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")


def check_mac(text: str) -> str:
    """A unicast, non-zero MAC in canonical lower-case colon form."""
    t = text.strip()
    if not _MAC.fullmatch(t):
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
    packed = ipaddress.IPv4Address(str(ip)).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


@dataclass(frozen=True)
class Lease:
    """Another container's address and MAC on the bridge."""
    name: str
    ip: str
    mac: str


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


def check_gateway(subnet: ipaddress.IPv4Network, text: str) -> ipaddress.IPv4Address:
    """A network's --gateway: a host address inside its subnet."""
    try:
        gw = ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise InvalidArgument(f"--gateway {text!r}: not an IPv4 address") from None
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"--gateway {gw}: not a host address of the subnet {subnet}")
    return gw


def parse_network_subnet(text: str) -> ipaddress.IPv4Network:
    """A network's --subnet: an IPv4 CIDR with room for a gateway and containers."""
    try:
        net = ipaddress.IPv4Network(text.strip())
    except ValueError as e:
        raise InvalidArgument(f"--subnet {text!r}: {e}") from None
    if net.prefixlen > 30:
        raise InvalidArgument(f"--subnet {net}: too small for containers (at most /30)")
    return net


def pick_subnet(pools: Iterable[tuple[str, int]], taken: Iterable[tuple[str, str]]) -> ipaddress.IPv4Network:
    """The first subnet of the pools ((base, prefix size) pairs, in order) overlapping nothing
    in `taken` ((description, cidr): networks, host addresses and routes)."""
    taken_nets = []
    for _, cidr in taken:
        try:
            other = ipaddress.IPv4Network(cidr, strict=False)
        except ValueError:
            continue
        if other.prefixlen:                 # the default route overlaps everything
            taken_nets.append(other)
    for base, size in pools:
        for candidate in ipaddress.IPv4Network(base).subnets(new_prefix=size):
            if not any(candidate.overlaps(t) for t in taken_nets):
                return candidate
    raise NetworkError("no free subnet left in the default address pools",
                       hint="give --subnet, remove unused networks, or widen default-address-pools")
