"""The leases on disk: network/endpoints/<container-id>.json, one per container (none for
--network none), "active" while its wiring is set up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.core.errors import NetworkError
from reconciler.engine.containers.records import ContainerRecord


def field_of(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def endpoints_dir(engine) -> Path:
    return engine.layout.network_dir / "endpoints"


def endpoint_path(engine, container_id: str) -> Path:
    return endpoints_dir(engine) / f"{container_id}.json"


def forget_endpoint(engine, container_id: str) -> None:
    endpoint_path(engine, container_id).unlink(missing_ok=True)


def read_endpoint(engine, container_id: str) -> dict | None:
    return engine.state_files.read_json(endpoint_path(engine, container_id), default=None)


def write_endpoint(engine, ep: dict) -> None:
    engine.state_files.write_json(endpoint_path(engine, ep["id"]), ep)


def all_endpoints(engine) -> list[dict]:
    out = []
    try:
        paths = sorted(endpoints_dir(engine).iterdir())
    except FileNotFoundError:
        return out
    for path in paths:
        if path.suffix == ".json" and not path.name.startswith("."):
            try:
                ep = engine.state_files.read_json(path, default=None)
            except FileNotFoundError:   # released meanwhile
                continue
            if ep:
                out.append(ep)
    return out


def as_record(record: ContainerRecord | dict) -> ContainerRecord:
    """The container record, typed (callers may pass container.json's content)."""
    if isinstance(record, ContainerRecord):
        return record
    try:
        return ContainerRecord.from_json(record)
    except ValueError:
        raise NetworkError("internal: container record without an id") from None


def public_view(ep: dict) -> dict:
    """What the container record keeps under "network" (see engine.containers)."""
    return {k: v for k, v in ep.items() if k not in ("active",)}


def attachments(ep: dict) -> list[dict]:
    """The networks a container is on besides its first (eth0): `network connect`'s, each
    {network, bridge, subnet, ip, prefixlen, gateway, mac, aliases, ifname, veth}."""
    return list(ep.get("attachments") or [])


def addresses(ep: dict) -> list[dict]:
    """Every (bridge, ip, mac, aliases, network, ifname) the container has, its first network's first."""
    out = []
    if ep.get("mode") == "bridge" and ep.get("ip"):
        out.append({"network": ep.get("network") or "bridge", "bridge": ep.get("bridge"), "ip": ep["ip"],
                    "prefixlen": ep.get("prefixlen"), "gateway": ep.get("gateway"), "mac": ep.get("mac"),
                    "aliases": list(ep.get("network_aliases") or []), "ifname": "eth0"})
    out += attachments(ep)
    return out


def bridges_of(ep: dict) -> set[str]:
    return {a["bridge"] for a in addresses(ep)}
