"""The bridge and our nftables table."""

from __future__ import annotations

from reconciler.core import ipam, nftables, portmapping
from reconciler.core.errors import NetworkError
from reconciler.engine.network.endpoints import all_endpoints, bridge_subnet


def ensure_bridge(engine) -> None:
    net = engine.netlink
    bridge = engine.config.bridge_name
    subnet = bridge_subnet(engine)
    if not net.link_exists(bridge):
        hits = ipam.overlapping(subnet.network, net.host_networks(exclude_ifname=bridge))
        if hits:
            raise NetworkError(f"bridge subnet {subnet.network} overlaps the host's " + "; ".join(hits),
                               hint=f"set another bridge-subnet in {engine.config.source}")
    net.ensure_bridge(bridge, f"{subnet.gateway}/{subnet.prefixlen}")
    net.enable_forwarding(bridge)


def apply_rules(engine, endpoints: list[dict] | None = None) -> None:
    """Replace our nftables table with one matching the active endpoints (one transaction)."""
    active = [e for e in (all_endpoints(engine) if endpoints is None else endpoints)
              if e.get("active") and e["mode"] == "bridge" and e.get("bridge") == engine.config.bridge_name]
    eps = [nftables.Endpoint(e["id"], e["ip"], tuple(portmapping.PortMapping.from_dict(p) for p in e.get("ports", [])))
           for e in active]
    engine.netlink.nft_apply(nftables.render_ruleset(engine.config.bridge_name, engine.config.bridge_subnet, eps))
