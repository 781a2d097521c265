"""A network's bridge and nftables table."""

from __future__ import annotations

import hashlib
from pathlib import Path

from reconciler.core import ipam, nftables, portmapping
from reconciler.core.errors import NetworkError
from reconciler.engine.network.endpoints import all_endpoints
from reconciler.engine.network.networks import Network, default_network


def ensure_bridge(engine, network: Network | None = None) -> bool:
    """The network's bridge up with its gateway address; True when it had to be created."""
    net = engine.netlink
    network = network or default_network(engine)
    bridge = network.bridge
    subnet = network.ipam
    created = not net.link_exists(bridge)
    if created:
        forget_rules(engine, bridge)        # a new bridge gets its table loaded, whatever was before
        hits = ipam.overlapping(subnet.network, net.host_networks(exclude_ifname=bridge))
        if hits:
            where = (f"set another bridge-subnet in {engine.config.source}" if network.default
                     else f"remove the network {network.name} and create it with another --subnet")
            raise NetworkError(f"subnet {subnet.network} of network {network.name} overlaps the host's "
                               + "; ".join(hits), hint=where)
    net.ensure_bridge(bridge, f"{subnet.gateway}/{subnet.prefixlen}")
    net.enable_forwarding(bridge)
    return created


def _stamp(engine, bridge: str) -> Path:
    return engine.layout.network_dir / "rules" / f"{bridge}.sha256"


def forget_rules(engine, bridge: str) -> None:
    _stamp(engine, bridge).unlink(missing_ok=True)


def apply_rules(engine, network: Network | None = None, endpoints: list[dict] | None = None) -> None:
    """Replace the network's nftables table with one matching its active endpoints (one
    transaction), unless the table loaded last (whose digest is kept under network/rules/) is
    the same text: a container without published ports changes no rule, and `nft` (~20 ms a
    run) is then not run at all. A bridge made anew forgets the digest (ensure_bridge)."""
    network = network or default_network(engine)
    active = [e for e in (all_endpoints(engine) if endpoints is None else endpoints)
              if e.get("active") and e["mode"] == "bridge" and e.get("bridge") == network.bridge]
    eps = [nftables.Endpoint(e["id"], e["ip"], tuple(portmapping.PortMapping.from_dict(p) for p in e.get("ports", [])))
           for e in active]
    ruleset = nftables.render_ruleset(network.bridge, network.subnet, eps, internal=network.internal)
    digest = hashlib.sha256(ruleset.encode()).hexdigest()
    stamp = _stamp(engine, network.bridge)
    try:
        if stamp.read_text() == digest:
            return
    except FileNotFoundError:
        pass
    stamp.unlink(missing_ok=True)     # killed while loading: the next command loads it again
    engine.netlink.nft_apply(ruleset)
    stamp.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine.state_files.atomic_write(stamp, digest.encode())
