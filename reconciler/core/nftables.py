"""The text of our nftables table: published-port DNAT, masquerading and the forward filter."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.portmapping import PortMapping


def table_name(bridge: str) -> str:
    """Our nftables table is named after the bridge, so two bridges (test runs) never collide."""
    return f"dm-{bridge}"


@dataclass(frozen=True)
class Endpoint:
    """A running container on the bridge, as the ruleset needs it."""
    container_id: str
    ip: str
    ports: tuple[PortMapping, ...] = ()


def render_ruleset(bridge: str, subnet: str, endpoints: Iterable[Endpoint], internal: bool = False) -> str:
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

    Each network (bridge) has a table of its own. A packet from one network to another passes
    the source's forward chain (accept) and the destination's (drop: not a reply, not DNATed):
    a drop in any base chain is final, so networks are isolated from each other as Docker's are.
    An internal network has no masquerade and drops whatever would leave its bridge.
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
        *([] if internal else [f'    ip saddr {subnet} oifname != "{bridge}" masquerade']),
        f'    ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade',
        f'    ip saddr {subnet} oifname "{bridge}" ct status dnat masquerade',
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *([f'    iifname "{bridge}" oifname != "{bridge}" drop'] if internal else []),
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
    if not host_ip:             # every address; parse_port_spec allows IPv4 only
        return False
    return ipaddress.IPv4Address(host_ip).is_loopback


def render_delete_table(bridge: str) -> str:
    table = table_name(bridge)
    # "table ..." first makes the delete succeed when the table is already gone.
    return f"table ip {table}\ndelete table ip {table}\n"
