"""prepare (create time): the network options checked and the lease recorded."""

from __future__ import annotations

from typing import Any

from reconciler.core import hostsfile, ipam, netmode, netnames, portmapping, resolvconf
from reconciler.core.errors import ConflictError, ContainerNotFound, InvalidArgument, NetworkError
from reconciler.core.labels import SERVICE as SERVICE_LABEL
from reconciler.core.labels import STACK as STACK_LABEL
from reconciler.engine.containers import store
from reconciler.engine.network import networks
from reconciler.engine.network.endpoints import (addresses, all_endpoints, attachments, bridges_of, field_of,
                                                 public_view, write_endpoint)
from reconciler.engine.network.teardown import sweep_stale


def prepare(engine, container_id: str, opts: Any) -> dict:
    """Validate the network options and record the lease, before the container exists.

    Raises InvalidArgument for malformed values and ConflictError for an IP, MAC or host port
    another container of this root already holds. Nothing is created on the host here.
    """
    mode = netmode.parse_network_mode(field_of(opts, "network"))
    ip_text, mac_text = field_of(opts, "ip"), field_of(opts, "mac")
    ports = portmapping.parse_ports(field_of(opts, "ports") or [])
    if mode.kind != "bridge":
        given = [flag for flag, v in (("--ip", ip_text), ("--mac-address", mac_text), ("-p", ports),
                                      ("--network-alias", field_of(opts, "network_aliases")),
                                      ("a second --network", field_of(opts, "networks"))) if v]
        if given:
            raise InvalidArgument(f"{', '.join(given)} cannot be used with --network {mode}",
                                  hint="static addresses and published ports need the bridge network")
    extra_hosts = [list(hostsfile.parse_add_host(h)) for h in field_of(opts, "add_hosts") or []]
    dns = resolvconf.check_dns(field_of(opts, "dns") or [])
    dns_search = list(field_of(opts, "dns_search") or [])
    if mode.kind in ("none", "container") and (extra_hosts or dns or dns_search):
        raise InvalidArgument(f"--add-host, --dns and --dns-search cannot be used with --network {mode}",
                              hint="a container without a network of its own has no /etc files of its own to change")
    labels = field_of(opts, "labels") or {}
    ep: dict = {
        "id": container_id,
        "mode": mode.kind if mode.kind == "bridge" else str(mode),   # the network's name: "network"
        "name": field_of(opts, "name") or container_id[:12],
        "hostname": field_of(opts, "hostname") or container_id[:12],
        "aliases": [labels[SERVICE_LABEL]] if labels.get(SERVICE_LABEL) else [],
        "stack": labels.get(STACK_LABEL, ""),
        "active": False,
    }
    for key, value in (("extra_hosts", extra_hosts), ("dns", dns), ("dns_search", dns_search)):
        if value:
            ep[key] = value
    if mode.kind == "none":
        return public_view(ep)      # nothing to lease, set up or clean: the record's copy is all
    with engine.mutation():
        sweep_stale(engine)
        if mode.kind == "container":
            target = resolve_container(engine, mode.container)
            if target == container_id:
                raise InvalidArgument("--network container: cannot join the container's own namespace")
            ep["container"] = target
        elif mode.kind == "bridge":
            ep["network_aliases"] = list(field_of(opts, "network_aliases") or [])
            ep.update(_lease(engine, networks.find(engine, mode.network), container_id, ip_text, mac_text, ports))
            for name in field_of(opts, "networks") or []:      # run --network A --network B: B is eth1
                network = networks.find(engine, name)
                if network.bridge in bridges_of(ep):
                    raise InvalidArgument(f"--network {name} given twice")
                taken = {int(a["ifname"][3:]) for a in attachments(ep)}
                ep["attachments"] = attachments(ep) + [
                    lease_attachment(engine, network, container_id, None, [], taken)]
        write_endpoint(engine, ep)
    return public_view(ep)


def _lease(engine, network: networks.Network, container_id: str, ip_text: str | None,
           mac_text: str | None, ports: list[portmapping.PortMapping]) -> dict:
    subnet = network.ipam
    if network.internal and ports:
        raise InvalidArgument(f"-p: network {network.name} is internal: nothing from outside reaches it, "
                              "so no port can be published on it")
    others = [e for e in all_endpoints(engine) if e["id"] != container_id and addresses(e)]
    # addresses and MACs are per network; host ports are the host's
    on_net = [(e["name"], a) for e in others for a in addresses(e) if a["bridge"] == network.bridge]
    ip, mac = ipam.choose_address(subnet, [ipam.Lease(name, a["ip"], a.get("mac") or "") for name, a in on_net],
                                  ip_text, mac_text)
    published = {e["name"]: [portmapping.PortMapping.from_dict(p) for p in e.get("ports", [])] for e in others}
    portmapping.check_port_conflicts(ports, published)
    net = engine.netlink
    ports = portmapping.with_host_ports(ports, lambda m: net.ephemeral_ports(m.host_ip, m.proto),
                                    [p for theirs in published.values() for p in theirs])
    check_host_ports(engine, ports)
    lease = {
        "network": network.name,
        "bridge": network.bridge,
        "subnet": str(subnet.network),
        "ip": str(ip),
        "prefixlen": subnet.prefixlen,
        "gateway": str(subnet.gateway),
        "mac": mac,
        "ports": [p.to_dict() for p in ports],
    }
    if network.internal:
        lease["internal"] = True
    return lease


MAX_INTERFACES = 10         # eth0..eth9: the veth's host name is vdm<id[:10]><n>, 15 characters at most


def attachment_veth(cid: str, index: int) -> str:
    return f"{netnames.host_veth_name(cid)}{index}"


def lease_attachment(engine, network: networks.Network, cid: str, ip_text: str | None, aliases: list[str],
                     taken_indexes: set[int]) -> dict:
    on_net = [a | {"name": e["name"]} for e in all_endpoints(engine) if e["id"] != cid
              for a in addresses(e) if a["bridge"] == network.bridge]
    ip, mac = ipam.choose_address(network.ipam, [ipam.Lease(a["name"], a["ip"], a.get("mac") or "") for a in on_net],
                                  ip_text, None)
    index = min(set(range(1, MAX_INTERFACES)) - taken_indexes, default=None)
    if index is None:
        raise NetworkError(f"a container can be on at most {MAX_INTERFACES} networks")
    att = {"network": network.name, "bridge": network.bridge, "subnet": network.subnet, "ip": str(ip),
           "prefixlen": network.ipam.prefixlen, "gateway": network.gateway, "mac": mac,
           "aliases": list(aliases), "ifname": f"eth{index}", "veth": attachment_veth(cid, index)}
    if network.internal:
        att["internal"] = True
    return att


def check_host_ports(engine, ports) -> None:
    net = engine.netlink
    for m in ports:
        state = net.host_port_state(m.host_ip, m.host_port, m.proto)
        where = f"{m.host_ip or '0.0.0.0'}:{m.host_port}/{m.proto}"
        if state == "in-use":
            raise ConflictError(f"port {where} is already in use by a process on the host",
                                hint="choose another host port")
        if state == "not-local":
            raise InvalidArgument(f"-p {where}: {m.host_ip} is not an address of this host")


def resolve_container(engine, name_or_id: str) -> str:
    """The id of a container of this root by name, id or unique id prefix (the lifecycle's rules)."""
    try:
        return store.resolve(engine, name_or_id).id
    except ContainerNotFound:
        raise ContainerNotFound(f"no such container: {name_or_id} (for --network container:{name_or_id})") from None
