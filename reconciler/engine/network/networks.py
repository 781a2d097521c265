"""Network objects: the default network ("bridge", from the configuration's bridge-name and
bridge-subnet, never stored) and user-defined ones, <root>/networks/<id>.json, each its own
Linux bridge (dm-<id[:12]>), subnet and nftables table.

A network's bridge and table are made when its first container starts (as the default
network's are) and removed by `network rm` / `network prune`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from reconciler.core import ipam, netmode
from reconciler.core.errors import ConflictError, InvalidArgument, NetworkNotFound
from reconciler.engine.network.endpoints import all_endpoints, bridges_of

BRIDGE_PREFIX = "dm-"


@dataclass(frozen=True)
class Network:
    name: str
    id: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool = False
    labels: dict = field(default_factory=dict)
    created: str = ""
    default: bool = False

    @property
    def ipam(self) -> ipam.Subnet:
        return ipam.Subnet.parse(self.subnet, self.gateway)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("default")
        return data

    @classmethod
    def from_json(cls, data: dict) -> Network:
        return cls(**{k: data[k] for k in ("name", "id", "bridge", "subnet", "gateway")},
                   internal=bool(data.get("internal")), labels=dict(data.get("labels") or {}),
                   created=data.get("created", ""))


def networks_dir(engine) -> Path:
    return engine.root / "networks"


def default_network(engine) -> Network:
    cfg = engine.config
    nid = hashlib.sha256(f"docker-mini default network {cfg.bridge_name}".encode()).hexdigest()
    return Network(name=netmode.DEFAULT_NETWORK, id=nid, bridge=cfg.bridge_name, subnet=cfg.bridge_subnet,
                   gateway=str(ipam.Subnet.parse(cfg.bridge_subnet).gateway), default=True)


def user_networks(engine) -> list[Network]:
    out = []
    try:
        paths = sorted(networks_dir(engine).glob("*.json"))
    except FileNotFoundError:
        return out
    for path in paths:
        data = engine.state_files.read_json(path, default=None)
        if data:
            out.append(Network.from_json(data))
    return sorted(out, key=lambda n: n.name)


def all_networks(engine) -> list[Network]:
    return [default_network(engine), *user_networks(engine)]


def find(engine, ref: str) -> Network:
    """A network by name, full id or unique id prefix."""
    nets = all_networks(engine)
    for n in nets:
        if n.name == ref or n.id == ref:
            return n
    hits = [n for n in nets if len(ref) >= 3 and n.id.startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    raise NetworkNotFound(f"network {ref!r} not found", hint="docker-mini network ls lists them")


def of_endpoint(engine, ep: dict) -> Network:
    """The network a lease is on; a stand-in from the lease itself when its record is gone
    (enough to tear its wiring down and render its rules)."""
    name = ep.get("network") or netmode.DEFAULT_NETWORK
    try:
        net = find(engine, name)
        if net.bridge == ep.get("bridge"):
            return net
    except NetworkNotFound:
        pass
    return Network(name=name, id="", bridge=ep.get("bridge") or "", subnet=ep.get("subnet") or "",
                   gateway=ep.get("gateway") or "", internal=bool(ep.get("internal")))


def create(engine, name: str, subnet: str | None = None, gateway: str | None = None,
           internal: bool = False, labels: dict | None = None) -> Network:
    netmode.check_network_name(name)
    net_subnet = ipam.parse_network_subnet(subnet) if subnet else None
    if gateway and net_subnet is None:
        raise InvalidArgument("--gateway needs --subnet")
    gw = ipam.check_gateway(net_subnet, gateway) if gateway else None
    with engine.mutation():
        existing = all_networks(engine)
        if any(n.name == name for n in existing):
            raise ConflictError(f"network with name {name} already exists")
        taken = [(f"network {n.name}:", n.subnet) for n in existing]
        host = engine.netlink.host_networks(exclude_ifname=default_network(engine).bridge)
        if net_subnet is None:
            net_subnet = ipam.pick_subnet(engine.config.address_pools, taken + host)
        else:
            hits = ipam.overlapping(net_subnet, taken + host)
            if hits:
                raise ConflictError(f"--subnet {net_subnet} overlaps the " + "; ".join(hits))
        nid = secrets.token_hex(32)
        net = Network(name=name, id=nid, bridge=BRIDGE_PREFIX + nid[:12], subnet=str(net_subnet),
                      gateway=str(gw or net_subnet.network_address + 1), internal=internal,
                      labels=dict(labels or {}),
                      created=datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))
        networks_dir(engine).mkdir(mode=0o700, parents=True, exist_ok=True)
        engine.state_files.write_json(networks_dir(engine) / f"{nid}.json", net.to_json())
    return net


def users(engine, net: Network) -> list[dict]:
    """The leases (containers, running or not) on the network."""
    return [e for e in all_endpoints(engine) if e["mode"] == "bridge" and net.bridge in bridges_of(e)]


def remove(engine, ref: str) -> Network:
    """`network rm`: refused while a container (running or not) has a lease on it."""
    with engine.mutation():
        net = find(engine, ref)
        if net.default:
            raise InvalidArgument(f"{net.name} is a pre-defined network and cannot be removed")
        held = users(engine, net)
        if held:
            names = ", ".join(sorted(e["name"] for e in held))
            raise ConflictError(f"network {net.name} is in use by container(s) {names}",
                                hint="remove those containers (or disconnect them) first")
        _remove_wiring(engine, net)
        (networks_dir(engine) / f"{net.id}.json").unlink(missing_ok=True)
    return net


def _remove_wiring(engine, net: Network) -> None:
    from reconciler.engine.network.rules import forget_rules
    nl = engine.netlink
    if nl.bridge_ports(net.bridge):
        raise ConflictError(f"bridge {net.bridge} of network {net.name} still has interfaces attached")
    forget_rules(engine, net.bridge)
    nl.remove_bridge_and_table(net.bridge)


def prune(engine) -> list[Network]:
    """`network prune`: the user-defined networks no container has a lease on."""
    removed = []
    with engine.mutation():
        for net in user_networks(engine):
            if users(engine, net) or engine.netlink.bridge_ports(net.bridge):
                continue
            _remove_wiring(engine, net)
            (networks_dir(engine) / f"{net.id}.json").unlink(missing_ok=True)
            removed.append(net)
    return removed
