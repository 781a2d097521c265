"""Addresses across a stack's containers: static ips inside the bridge subnet, not its network,
broadcast or gateway address, macs unicast, neither used twice."""

from __future__ import annotations

import ipaddress
import re

from reconciler.core.spec.model import ServiceSpec
from reconciler.core.spec.problems import SpecErrors, show


def check_addresses(services: dict[str, ServiceSpec], errors: SpecErrors, subnet: str | None) -> None:
    net = ipaddress.IPv4Network(subnet) if subnet else None
    seen_ip: dict[str, str] = {}
    seen_mac: dict[str, str] = {}
    for name, s in services.items():
        if s.state == "absent":
            continue
        if s.ip and isinstance(s.ip, str):          # anything else: the schema says what is wrong
            path = ("containers", name, "ip")
            try:
                ip = ipaddress.IPv4Address(s.ip)
            except ValueError:
                ip = None
                errors.add(path, f"{show(s.ip)} is not an IPv4 address")
            if ip is not None and net is not None:
                hosts_start = net.network_address + 1
                if ip not in net:
                    errors.add(path, f"{show(s.ip)} is outside the bridge subnet {net}")
                elif ip in (net.network_address, net.broadcast_address):
                    errors.add(path, f"{show(s.ip)} is the subnet's {'network' if ip == net.network_address else 'broadcast'} address")
                elif ip == hosts_start:
                    errors.add(path, f"{show(s.ip)} is the bridge's gateway address")
            if s.ip in seen_ip:
                errors.add(path, f"{show(s.ip)} is also the ip of container {show(seen_ip[s.ip])}")
            seen_ip.setdefault(s.ip, name)
        if s.mac:
            path = ("containers", name, "mac")
            if not isinstance(s.mac, str) or not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", s.mac):
                continue                        # malformed: the schema says so
            if int(s.mac.split(":")[0], 16) & 1:
                errors.add(path, f"{show(s.mac)} is a multicast address (the first byte must be even)")
            if s.mac in seen_mac:
                errors.add(path, f"{show(s.mac)} is also the mac of container {show(seen_mac[s.mac])}")
            seen_mac.setdefault(s.mac, name)
