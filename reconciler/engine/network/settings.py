"""inspect's NetworkSettings and `network ls`."""

from __future__ import annotations

from typing import Any

from reconciler.core import netnames, portmapping
from reconciler.engine.network.endpoints import all_endpoints, as_record, bridge_subnet, read_endpoint


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
        settings["Networks"] = {"bridge": {
            "IPAMConfig": {"IPv4Address": ep.get("ip", "")},
            "NetworkID": ep.get("bridge", ""),
            "EndpointID": cid if active else "",
            "Gateway": ep.get("gateway", ""),
            "IPAddress": ep.get("ip", ""),
            "IPPrefixLen": ep.get("prefixlen", 0),
            "MacAddress": ep.get("mac", ""),
            "Aliases": [a for a in (ep.get("name"), *ep.get("aliases", [])) if a],
        }}
    elif mode in ("none", "host"):
        settings["Networks"] = {mode: {"IPAddress": "", "Gateway": "", "MacAddress": ""}}
    return settings


def list_networks(engine) -> list[dict]:
    """`network ls`: our bridge with its subnet and the containers holding leases on it."""
    net = engine.netlink
    bridge = engine.config.bridge_name
    eps = [e for e in all_endpoints(engine) if e["mode"] == "bridge" and e.get("bridge") == bridge]
    return [{
        "name": "bridge",
        "bridge": bridge,
        "subnet": engine.config.bridge_subnet,
        "gateway": str(bridge_subnet(engine).gateway),
        "exists": net.link_exists(bridge),
        "containers": [{"id": e["id"], "name": e["name"], "ip": e["ip"], "mac": e["mac"],
                        "active": bool(e.get("active"))} for e in eps],
    }]
