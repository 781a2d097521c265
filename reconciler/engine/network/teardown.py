"""Undoing the wiring: teardown (stop), release (rm), what a killed command left, prune."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.core import netnames
from reconciler.core.errors import DockerMiniError
from reconciler.engine.containers import store
from reconciler.engine.network.endpoints import (all_endpoints, as_record, attachments, forget_endpoint,
                                                 read_endpoint, write_endpoint)
from reconciler.engine.network import networks
from reconciler.engine.network.etcfiles import refresh_hosts
from reconciler.engine.network.rules import apply_rules, forget_rules


def teardown(engine, record: Any) -> None:
    """Remove the container's veth, netns and port rules; the lease stays. Idempotent."""
    cid = as_record(record).id
    with engine.mutation():
        ep = read_endpoint(engine, cid)
        teardown_id(engine, cid, ep)


def teardown_id(engine, cid: str, ep: dict | None) -> None:
    net = engine.netlink
    for att in attachments(ep or {}):
        net.delete_link(att["veth"])
    net.delete_link(netnames.host_veth_name(cid))
    net.remove_netns(netnames.netns_name(cid))
    if not (ep and ep.get("active")):
        return          # the rules and the peers' hosts files hold active endpoints only
    ep["active"] = False
    network = networks.of_endpoint(engine, ep) if ep["mode"] == "bridge" else None
    if network is not None and net.link_exists(network.bridge):
        if engine.network_batch is not None:
            engine.network_batch.rules.add(network.name)        # once, at its end
            engine.network_batch.hosts = True
        else:
            endpoints = [ep if e["id"] == cid else e for e in all_endpoints(engine)]
            apply_rules(engine, network, endpoints)
            refresh_hosts(engine, endpoints)
    # inactive only once out of the rules and hosts files: a teardown killed before this line
    # is done again by the next command, which finds the endpoint still active
    write_endpoint(engine, ep)


def release(engine, record: Any) -> None:
    """Forget the lease (at rm), after tearing down whatever is still set up."""
    cid = as_record(record).id
    with engine.mutation():
        ep = read_endpoint(engine, cid)
        if ep and ep.get("active"):
            teardown_id(engine, cid, ep)
        forget_endpoint(engine, cid)


def container_status(engine, cid: str) -> str | None:
    """The recorded status; "unreadable" for a torn record (left alone: `system check` repairs)."""
    try:
        rec = store.load(engine, cid)
    except DockerMiniError:
        return "unreadable"
    if rec is None:
        return None
    return rec.state.status


def sweep_stale(engine, keep: str | None = None) -> None:
    """cleanup_stale before a create or a start: once per batch (network.batch), whose own
    stops and removals leave nothing behind."""
    b = engine.network_batch
    if b is not None and b.swept:
        return
    cleanup_stale(engine, keep=keep)
    if b is not None:
        b.swept = True


def cleanup_stale(engine, keep: str | None = None) -> list[str]:
    """Tear down what a killed command left: endpoints marked active (or with a netns or veth on
    the host) whose container is not running; leases whose container record is gone.
    Only this root's containers are considered: other roots may share the bridge."""
    net = engine.netlink
    cleaned = []
    existing_ns = set(net.list_netns(netnames.NETNS_PREFIX))
    for ep in all_endpoints(engine):
        cid = ep["id"]
        if cid == keep:
            continue
        status = container_status(engine, cid)
        if status is None and not engine.layout.container_dir(cid).exists():
            # the container is gone; a create killed before writing container.json, or an rm
            # killed before release
            teardown_id(engine, cid, ep)
            forget_endpoint(engine, cid)
            cleaned.append(cid)
            continue
        if status in ("running", "unreadable"):
            continue
        if ep.get("active") or netnames.netns_name(cid) in existing_ns:
            teardown_id(engine, cid, ep)
            cleaned.append(cid)
    return cleaned


def prune(engine) -> list[str]:
    """Remove the bridge and our nftables table when no container uses them. Returns what went."""
    net = engine.netlink
    bridge = engine.config.bridge_name
    with engine.mutation():
        cleanup_stale(engine)
        users = [e for e in all_endpoints(engine)
                 if e.get("active") and e["mode"] == "bridge" and e.get("bridge") == bridge]
        if users:
            return []
        if net.bridge_ports(bridge):
            return []  # another docker-mini root still has containers on it
        forget_rules(engine, bridge)
        return net.remove_bridge_and_table(bridge)
