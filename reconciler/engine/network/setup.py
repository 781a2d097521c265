"""setup (start time): the netns, veth, rules and /etc files of a container."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from reconciler.core import netmode, netnames, portmapping
from reconciler.core.errors import (ConflictError, ContainerNotFound, DockerMiniError, NetworkError,
                                    NetworkNotFound)
from reconciler.core.labels import SERVICE as SERVICE_LABEL
from reconciler.core.labels import STACK as STACK_LABEL
from reconciler.engine.containers import store
from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine.network import networks
from reconciler.engine.network.connect import wire
from reconciler.engine.network.endpoints import (all_endpoints, as_record, attachments, read_endpoint,
                                                 write_endpoint)
from reconciler.engine.network.etcfiles import refresh_hosts, write_container_files
from reconciler.engine.network.lease import check_host_ports, prepare
from reconciler.engine.network.rules import apply_rules, ensure_bridge
from reconciler.engine.network.teardown import sweep_stale, teardown_id


def setup(engine, record: Any) -> str | None:
    """Wire the container's network before its process starts; idempotent.

    Returns the netns path for runc's linux.namespaces, or None to stay in the host's namespace.
    Also writes the container's hosts and resolv.conf (in place) and refreshes the hosts files
    of its running peers.
    """
    record = as_record(record)
    cid = record.id
    with engine.mutation():
        ep = endpoint_for(engine, record)
        names_from_record(ep, record)
        kind = netmode.parse_network_mode(ep["mode"]).kind
        net = engine.netlink
        if kind == "host":
            write_container_files(engine, ep, host_mode=True)
            return None
        if kind == "container":
            path = joined_netns(engine, ep)
            ep["active"] = True     # its hosts file now follows the target's peers
            write_endpoint(engine, ep)
            return path
        sweep_stale(engine, keep=cid)
        network = None
        if kind == "bridge":
            network = network_for(engine, ep)
            check_host_ports(engine, [portmapping.PortMapping.from_dict(p) for p in ep.get("ports", [])])
            ensure_bridge(engine, network)
        ns = netnames.netns_name(cid)
        try:
            path = net.create_netns(ns)
            if kind == "bridge":
                net.create_veth(netnames.host_veth_name(cid), ns, network.bridge, mac=ep["mac"],
                                cidr=f"{ep['ip']}/{ep['prefixlen']}",
                                gateway=None if network.internal else ep["gateway"])
                for att in attachments(ep):         # `network connect`'s: eth1...
                    wire(engine, cid, att)
            ep["active"] = True
            write_endpoint(engine, ep)
            endpoints = all_endpoints(engine)      # read once for the hosts files and the rules
            write_container_files(engine, ep, endpoints=endpoints)
            if kind == "bridge":
                apply_rules(engine, network, endpoints)
                refresh_hosts(engine, endpoints)
        except BaseException:
            teardown_id(engine, cid, ep)
            raise
        return path


def network_for(engine, ep: dict) -> networks.Network:
    """The network the lease is on, as it still is: a lease on a network since removed, or on a
    default bridge the configuration has since changed, cannot be set up."""
    try:
        network = networks.find(engine, ep.get("network") or netmode.DEFAULT_NETWORK)
    except NetworkNotFound:
        raise NetworkError(f"container {ep['name']} is on network {ep.get('network')}, which no longer exists",
                           hint="recreate the container: rm it and create it again") from None
    if (ep.get("bridge"), ep.get("subnet")) != (network.bridge, network.subnet):
        where = (f"{engine.config.source} now configures" if network.default
                 else f"network {network.name} is now")
        raise NetworkError(
            f"container {ep['name']} was created on bridge {ep.get('bridge')} ({ep.get('subnet')}), "
            f"but {where} {network.bridge} ({network.subnet})",
            hint="recreate the container: rm it and create it again")
    return network


def endpoint_for(engine, record: ContainerRecord) -> dict:
    cid = record.id
    ep = read_endpoint(engine, cid)
    if ep is None:
        # A record from before networking was prepared (or whose lease was lost): prepare now
        # from the options it was created with. (--network none keeps no endpoint file.)
        opts = record.options
        prepared = prepare(engine, cid, dataclasses.replace(
            opts, name=record.name or opts.name, labels=record.labels or opts.labels))
        ep = read_endpoint(engine, cid) or {**prepared, "active": False}
    return ep


def names_from_record(ep: dict, record: ContainerRecord) -> None:
    """The record's name and hostname win over what prepare saw (the lifecycle may pick a
    generated name after prepare)."""
    name, hostname, labels = record.name, record.config.hostname, record.labels
    if name:
        ep["name"] = name
    if hostname:
        ep["hostname"] = hostname
    if labels.get(SERVICE_LABEL):
        ep["aliases"] = [labels[SERVICE_LABEL]]
        ep["stack"] = labels.get(STACK_LABEL, "")


def joined_netns(engine, ep: dict) -> str | None:
    target = read_endpoint(engine, ep["container"])
    if target is None:
        raise ContainerNotFound(f"container {ep['container'][:12]} (--network container:) no longer exists")
    if target["mode"] == "host":
        write_container_files(engine, ep, host_mode=True)
        return None
    if target["mode"].startswith("container:"):
        return joined_netns(engine, target)
    ns = netnames.netns_name(target["id"])
    net = engine.netlink
    if target.get("active") and net.netns_exists(ns):
        path = net.netns_path(ns)
    else:
        # a namespace runc made itself (--network none is left to runc): the process's own
        path = process_netns(engine, target["id"])
        if path is None:
            raise ConflictError(f"cannot join the network of container {target['name']!r}: it is not running",
                                hint=f"start {target['name']} first")
    write_container_files(engine, ep, like=target)
    return path


def process_netns(engine, cid: str) -> str | None:
    try:
        rec = store.load(engine, cid)
    except DockerMiniError:
        return None
    if rec is None:
        return None
    pid = rec.state.pid
    if not rec.state.running or not pid:
        return None
    if not engine.processes.pid_alive(pid, rec.state.pid_start):
        return None         # it died unreaped: its pid may be another process's by now
    path = Path(f"/proc/{pid}/ns/net")
    return str(path) if path.exists() else None
