"""inspect's NetworkSettings and `network ls`."""

from __future__ import annotations

from typing import Any

from reconciler.core import netnames, portmapping
from reconciler.engine.network import networks
from reconciler.engine.network.endpoints import addresses, all_endpoints, as_record, read_endpoint
from reconciler.engine.network.networks import Network


def network_settings(engine, record: Any) -> dict:
    """Docker's NetworkSettings for inspect."""
    record = as_record(record)
    cid = record.id
    ep = read_endpoint(engine, cid) or record.network.to_json()
    mode = ep.get("mode", "bridge")
    ports: dict[str, list[dict] | None] = {}
    for p in ep.get("ports", []):
        m = portmapping.PortMapping.from_dict(p)
        ports.setdefault(m.key, []).append({"HostIp": m.host_ip or "0.0.0.0", "HostPort": str(m.host_port)})
    active = bool(ep.get("active"))
    sandbox = netnames.netns_name(cid) if active and mode in ("bridge", "none") else ""
    settings = {
        "Bridge": ep.get("bridge", "") if mode == "bridge" else "",
        "SandboxID": sandbox,
        "SandboxKey": str(engine.netlink.netns_path(sandbox)) if sandbox else "",
        "Ports": ports,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "Gateway": "",
        "MacAddress": "",
        "Networks": {},
    }
    if mode == "bridge":
        # Docker reports the static addresses even when stopped only in Networks' IPAMConfig;
        # we report the lease always: it is what the container gets on every start.
        settings.update({
            "IPAddress": ep.get("ip", ""),
            "IPPrefixLen": ep.get("prefixlen", 0),
            "Gateway": ep.get("gateway", ""),
            "MacAddress": ep.get("mac", ""),
        })
        settings["Networks"] = {a["network"]: {
            "IPAMConfig": {"IPv4Address": a["ip"]},
            "NetworkID": a["bridge"],
            "EndpointID": f"{cid}-{a['ifname']}" if active else "",
            "Gateway": a.get("gateway") or "",
            "IPAddress": a["ip"],
            "IPPrefixLen": a.get("prefixlen") or 0,
            "MacAddress": a.get("mac") or "",
            "Aliases": [n for n in (ep.get("name"), *ep.get("aliases", []), *a.get("aliases", [])) if n],
        } for a in addresses(ep)}
    elif mode in ("none", "host"):
        settings["Networks"] = {mode: {"IPAddress": "", "Gateway": "", "MacAddress": ""}}
    return settings


def inspect_network(engine, network: Network, endpoints: list[dict] | None = None) -> dict:
    """Docker's `network inspect` shape; Containers are the running ones (leases set up)."""
    on = [(e, a) for e in (all_endpoints(engine) if endpoints is None else endpoints)
          if e["mode"] == "bridge" and e.get("active") for a in addresses(e) if a["bridge"] == network.bridge]
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": network.subnet, "Gateway": network.gateway}]},
        "Internal": network.internal,
        "Attachable": False,
        "Containers": {e["id"]: {"Name": e["name"], "EndpointID": f"{e['id']}-{a['ifname']}",
                                 "MacAddress": a.get("mac") or "", "IPv4Address": f"{a['ip']}/{a['prefixlen']}",
                                 "IPv6Address": ""}
                       for e, a in on},
        "Options": {"com.docker.network.bridge.name": network.bridge},
        "Labels": dict(network.labels),
    }


def list_networks(engine) -> list[dict]:
    """`network ls`/`inspect` of every bridge network: the default one first."""
    endpoints = all_endpoints(engine)
    return [inspect_network(engine, n, endpoints) for n in networks.all_networks(engine)]
