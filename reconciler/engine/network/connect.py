"""`network connect` / `disconnect`: a container's further networks (eth1, eth2...), each a veth
of its own into the container's netns, on the network's bridge. They are kept in the lease
("attachments"), so a restart wires them again; the first network (eth0) is the one the
container was created on."""

from __future__ import annotations

from reconciler.core import netnames
from reconciler.core.errors import ConflictError, InvalidArgument
from reconciler.engine.network import networks
from reconciler.engine.network.endpoints import attachments, bridges_of, read_endpoint, write_endpoint
from reconciler.engine.network.etcfiles import refresh_hosts
from reconciler.engine.network.lease import lease_attachment, resolve_container
from reconciler.engine.network.rules import apply_rules, ensure_bridge

def wire(engine, cid: str, att: dict) -> None:
    """The attachment's veth into the container's (running) netns, and its network's bridge and table."""
    network = networks.find(engine, att["network"])
    ensure_bridge(engine, network)
    engine.netlink.create_veth(att["veth"], netnames.netns_name(cid), network.bridge, mac=att["mac"],
                               cidr=f"{att['ip']}/{att['prefixlen']}", gateway=None, ifname=att["ifname"])
    apply_rules(engine, network)      # loads nothing when the table is already what it should be


def unwire(engine, att: dict) -> None:
    engine.netlink.delete_link(att["veth"])


def connect(engine, net_ref: str, container_ref: str, ip: str | None = None,
            aliases: list[str] | None = None) -> dict:
    with engine.mutation():
        network = networks.find(engine, net_ref)
        cid = resolve_container(engine, container_ref)
        ep = read_endpoint(engine, cid)
        if ep is None or ep.get("mode") != "bridge":
            mode = ep.get("mode") if ep else "none"
            raise InvalidArgument(f"container {container_ref} uses network mode {mode}: "
                                  "only a container on a bridge network can be connected to another")
        if network.bridge in bridges_of(ep):
            raise ConflictError(f"container {ep['name']} is already connected to network {network.name}")
        taken = {int(a["ifname"][3:]) for a in attachments(ep)}
        att = lease_attachment(engine, network, cid, ip, aliases or [], taken)
        before = attachments(ep)
        ep["attachments"] = before + [att]
        # recorded before it is wired: a command killed in between leaves a lease the next start
        # wires (or a disconnect removes), never an interface nothing knows of
        write_endpoint(engine, ep)
        if ep.get("active"):
            try:
                wire(engine, cid, att)
            except BaseException:
                unwire(engine, att)
                ep["attachments"] = before
                write_endpoint(engine, ep)
                raise
            refresh_hosts(engine)
    return att


def disconnect(engine, net_ref: str, container_ref: str) -> None:
    with engine.mutation():
        network = networks.find(engine, net_ref)
        cid = resolve_container(engine, container_ref)
        ep = read_endpoint(engine, cid)
        if ep is None or network.bridge not in bridges_of(ep):
            raise ConflictError(f"container {container_ref} is not connected to network {network.name}")
        if ep.get("bridge") == network.bridge:
            raise InvalidArgument(f"container {ep['name']} was created on network {network.name} (its eth0): "
                                  "it cannot be disconnected from it",
                                  hint="recreate the container on another network")
        att = next(a for a in attachments(ep) if a["bridge"] == network.bridge)
        unwire(engine, att)
        ep["attachments"] = [a for a in attachments(ep) if a is not att]
        write_endpoint(engine, ep)
        if ep.get("active"):
            refresh_hosts(engine)
