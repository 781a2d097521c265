"""The container's hosts and resolv.conf, written in place (they are bind-mounted into it)."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.core import hostsfile, resolvconf
from reconciler.engine.network.endpoints import addresses, all_endpoints, bridges_of


def _container_file(engine, cid: str, name: str) -> Path:
    return engine.layout.container_dir(cid) / name


def _read_host_file(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _write_in_place(path: Path, text: str) -> None:
    """Truncate and write: the file may be bind-mounted into a running container, where a
    rename would leave the container looking at the old inode."""
    if not path.parent.is_dir():
        return  # the container is being removed
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _names(ep: dict, seen_from: dict | None = None) -> tuple[str, ...]:
    """A container's names in a hosts file. Service names (`db`) are scoped to their stack, as
    Compose scopes them to its project: another stack's `db` must not answer for ours."""
    own_stack = seen_from is None or (ep.get("stack") and ep.get("stack") == seen_from.get("stack"))
    aliases = ep.get("aliases", []) if own_stack else []
    return tuple([ep.get("hostname") or "", ep.get("name") or "", *aliases])


def render_hosts_for(engine, ep: dict, endpoints: list[dict] | None = None, own: dict | None = None) -> str:
    """`ep`'s view of its networks; the --add-host lines are `own`'s (the container whose file it
    is, which differs from `ep` for --network container:)."""
    if endpoints is None:
        endpoints = all_endpoints(engine)
    # a peer is listed under each address it has on a network this container is on (names
    # resolve only where they share a network), with its aliases on that network
    mine = bridges_of(ep)
    peers = [hostsfile.HostEntry(a["ip"], _names(e, seen_from=ep) + tuple(a.get("aliases") or ()))
             for e in endpoints if e["id"] != ep["id"] and e.get("active") and e["mode"] == "bridge"
             for a in addresses(e) if a["bridge"] in mine]
    own_addrs = addresses(ep)
    own_entry = (hostsfile.HostEntry(own_addrs[0]["ip"], _names(ep) + tuple(own_addrs[0].get("aliases") or ()))
                 if own_addrs else None)
    text = hostsfile.render_hosts(own_entry, peers, hostname=ep.get("hostname"))
    return hostsfile.with_extra_hosts(text, _extra(own or ep))


def _host_resolv_conf() -> str:
    return _read_host_file("/etc/resolv.conf") or ""


def _extra(ep: dict) -> list[tuple[str, str]]:
    return [tuple(h) for h in ep.get("extra_hosts") or []]


def _resolv_conf(ep: dict, base: str) -> str:
    return resolvconf.with_overrides(base, ep.get("dns") or (), ep.get("dns_search") or ())


def write_container_files(engine, ep: dict, *, host_mode: bool = False, like: dict | None = None,
                          endpoints: list[dict] | None = None) -> None:
    cid = ep["id"]
    if host_mode:
        hosts = _read_host_file("/etc/hosts")
        if hosts is None:
            hosts = hostsfile.render_hosts(None, hostname=ep.get("hostname"))
        _write_in_place(_container_file(engine, cid, "hosts"), hostsfile.with_extra_hosts(hosts, _extra(ep)))
        _write_in_place(_container_file(engine, cid, "resolv.conf"), _resolv_conf(ep, _host_resolv_conf()))
        return
    _write_in_place(_container_file(engine, cid, "hosts"), render_hosts_for(engine, like or ep, endpoints, own=ep))
    _write_in_place(_container_file(engine, cid, "resolv.conf"),
                    _resolv_conf(ep, resolvconf.render_resolv_conf(_host_resolv_conf())))


def refresh_hosts(engine, endpoints: list[dict] | None = None) -> None:
    """Rewrite /etc/hosts of every container set up on our bridge (and of those joined to them)."""
    if engine.network_batch is not None:
        engine.network_batch.hosts = True       # once, at the batch's end (network.batch)
        return
    if endpoints is None:
        endpoints = all_endpoints(engine)
    by_id = {e["id"]: e for e in endpoints}
    for ep in endpoints:
        if not ep.get("active"):
            continue
        if ep["mode"] == "bridge":
            _write_in_place(_container_file(engine, ep["id"], "hosts"), render_hosts_for(engine, ep, endpoints))
        elif ep["mode"].startswith("container:") and ep.get("container") in by_id:
            target = by_id[ep["container"]]
            if addresses(target):
                _write_in_place(_container_file(engine, ep["id"], "hosts"),
                                render_hosts_for(engine, target, endpoints, own=ep))
