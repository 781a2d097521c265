"""Container networking, called by engine.containers:

    prepare(engine, container_id, opts) -> dict   at create, before anything else is created
    setup(engine, record) -> str | None           at start: netns path for runc (None: host)
    teardown(engine, record)                      at stop / after exit
    release(engine, record)                       at rm
    network_settings(engine, record) -> dict      inspect's NetworkSettings

State of our own, under layout.network_dir:

    endpoints/<container-id>.json   the lease: mode, ip, mac, ports, names; "active" while set up
                                    (none for --network none: nothing to lease or set up)

Files of the container's own that setup writes (creating them when missing, always in place):

    overlay-containers/<id>/hosts         localhost, itself, every running peer on the bridge
    overlay-containers/<id>/resolv.conf   the host's, loopback nameservers dropped

The lifecycle bind-mounts them after setup returns and never rewrites them; peers' hosts files
are rewritten here whenever a container on the bridge starts or stops. prepare runs under the
lifecycle's mutation lock, after container.json ("creating") exists: a lease whose container
directory is gone is a killed create's (or rm's) leftover, and the next command drops it.

The lease is the truth for IP, MAC and ports, so a container keeps them across stop/start.
Names on the host are derived from the container id (netns dm-<id>, host veth vdm<id[:10]>),
so whatever a killed command left behind is found and removed by the next one.
"""

from __future__ import annotations

import os

from reconciler.core import hostsfile, ipam, netmode, netnames, nftables, portmapping, resolvconf
from reconciler.core.labels import SERVICE as SERVICE_LABEL
from reconciler.core.labels import STACK as STACK_LABEL
from reconciler.core.errors import ConflictError, ContainerNotFound, DockerMiniError, InvalidArgument, NetworkError
from reconciler.engine.containers import store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



def _adapter():
    from reconciler.adapters import network  # lazy: pyroute2 only when networking is touched
    return network


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


# ---------------------------------------------------------------------------------------------
# leases on disk


def _endpoints_dir(engine) -> str:
    return f"{engine.layout.network_dir}/endpoints"


def _endpoint_path(engine, container_id: str) -> str:
    return f"{_endpoints_dir(engine)}/{container_id}.json"


def _forget_endpoint(engine, container_id: str) -> None:
    try:
        os.unlink(_endpoint_path(engine, container_id))
    except FileNotFoundError:
        pass


def _read_endpoint(engine, container_id: str) -> dict | None:
    from reconciler.adapters import statefiles
    return statefiles.read_json(_endpoint_path(engine, container_id), default=None)


def _write_endpoint(engine, ep: dict) -> None:
    from reconciler.adapters import statefiles
    statefiles.write_json(_endpoint_path(engine, ep["id"]), ep)


def _all_endpoints(engine) -> list[dict]:
    from reconciler.adapters import statefiles
    d = _endpoints_dir(engine)
    out = []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return out
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            try:
                ep = statefiles.read_json(f"{d}/{name}", default=None)
            except FileNotFoundError:   # released meanwhile
                continue
            if ep:
                out.append(ep)
    return out


def _container_id(record: Any) -> str:
    cid = _get(record, "id")
    if not cid:
        raise NetworkError("internal: container record without an id")
    return cid


def _subnet(engine) -> ipam.Subnet:
    return ipam.Subnet.parse(engine.config.bridge_subnet)


# ---------------------------------------------------------------------------------------------
# prepare (create time)


def prepare(engine, container_id: str, opts: Any) -> dict:
    """Validate the network options and record the lease, before the container exists.

    Raises InvalidArgument for malformed values and ConflictError for an IP, MAC or host port
    another container of this root already holds. Nothing is created on the host here.
    """
    mode = netmode.parse_network_mode(_get(opts, "network"))
    ip_text, mac_text = _get(opts, "ip"), _get(opts, "mac")
    ports = portmapping.parse_ports(_get(opts, "ports") or [])
    if mode.kind != "bridge":
        given = [flag for flag, v in (("--ip", ip_text), ("--mac-address", mac_text), ("-p", ports)) if v]
        if given:
            raise InvalidArgument(f"{', '.join(given)} cannot be used with --network {mode}",
                                  hint="static addresses and published ports need the bridge network")
    labels = _get(opts, "labels") or {}
    ep: dict = {
        "id": container_id,
        "mode": str(mode),
        "name": _get(opts, "name") or container_id[:12],
        "hostname": _get(opts, "hostname") or container_id[:12],
        "aliases": [labels[SERVICE_LABEL]] if labels.get(SERVICE_LABEL) else [],
        "stack": labels.get(STACK_LABEL, ""),
        "active": False,
    }
    if mode.kind == "none":
        return _public(ep)      # nothing to lease, set up or clean: the record's copy is all
    with engine.mutation():
        cleanup_stale(engine)
        if mode.kind == "container":
            target = _resolve_container(engine, mode.container)
            if target == container_id:
                raise InvalidArgument("--network container: cannot join the container's own namespace")
            ep["container"] = target
        elif mode.kind == "bridge":
            ep.update(_lease(engine, container_id, ip_text, mac_text, ports))
        _write_endpoint(engine, ep)
    return _public(ep)


def _lease(engine, container_id: str, ip_text: str | None, mac_text: str | None,
           ports: list[portmapping.PortMapping]) -> dict:
    subnet = _subnet(engine)
    others = [e for e in _all_endpoints(engine) if e["id"] != container_id and e.get("ip")]
    ip, mac = ipam.choose_address(subnet, [ipam.Lease(e["name"], e["ip"], e.get("mac", "")) for e in others],
                                     ip_text, mac_text)
    published = {e["name"]: [portmapping.PortMapping.from_dict(p) for p in e.get("ports", [])] for e in others}
    portmapping.check_port_conflicts(ports, published)
    net = _adapter()
    ports = portmapping.with_host_ports(ports, lambda m: net.ephemeral_ports(m.host_ip, m.proto),
                                    [p for theirs in published.values() for p in theirs])
    _check_host_ports(ports)
    return {
        "bridge": engine.config.bridge_name,
        "subnet": str(subnet.network),
        "ip": str(ip),
        "prefixlen": subnet.prefixlen,
        "gateway": str(subnet.gateway),
        "mac": mac,
        "ports": [p.to_dict() for p in ports],
    }


def _check_host_ports(ports) -> None:
    net = _adapter()
    for m in ports:
        state = net.host_port_state(m.host_ip, m.host_port, m.proto)
        where = f"{m.host_ip or '0.0.0.0'}:{m.host_port}/{m.proto}"
        if state == "in-use":
            raise ConflictError(f"port {where} is already in use by a process on the host",
                                hint="choose another host port")
        if state == "not-local":
            raise InvalidArgument(f"-p {where}: {m.host_ip} is not an address of this host")


def _public(ep: dict) -> dict:
    """What the container record keeps under "network" (see engine.containers)."""
    return {k: v for k, v in ep.items() if k not in ("active",)}


def _resolve_container(engine, name_or_id: str) -> str:
    """The id of a container of this root by name, id or unique id prefix (the lifecycle's rules)."""
    try:
        return store.resolve(engine, name_or_id)["id"]
    except ContainerNotFound:
        raise ContainerNotFound(f"no such container: {name_or_id} (for --network container:{name_or_id})") from None


# ---------------------------------------------------------------------------------------------
# setup (start time)


def setup(engine, record: Any) -> str | None:
    """Wire the container's network before its process starts; idempotent.

    Returns the netns path for runc's linux.namespaces, or None to stay in the host's namespace.
    Also writes the container's hosts and resolv.conf (in place) and refreshes the hosts files
    of its running peers.
    """
    cid = _container_id(record)
    with engine.mutation():
        ep = _endpoint_for(engine, record)
        _names_from_record(ep, record)
        kind = netmode.parse_network_mode(ep["mode"]).kind
        net = _adapter()
        if kind == "host":
            _write_container_files(engine, ep, host_mode=True)
            return None
        if kind == "container":
            path = _joined_netns(engine, ep)
            ep["active"] = True     # its hosts file now follows the target's peers
            _write_endpoint(engine, ep)
            return path
        cleanup_stale(engine, keep=cid)
        if kind == "bridge":
            if (ep.get("bridge"), ep.get("subnet")) != (engine.config.bridge_name, engine.config.bridge_subnet):
                raise NetworkError(
                    f"container {ep['name']} was created on bridge {ep.get('bridge')} ({ep.get('subnet')}), "
                    f"but {engine.config.source} now configures {engine.config.bridge_name} "
                    f"({engine.config.bridge_subnet})", hint="recreate the container: rm it and create it again")
            _check_host_ports(portmapping.PortMapping.from_dict(p) for p in ep.get("ports", []))
            _ensure_bridge(engine)
        ns = netnames.netns_name(cid)
        try:
            path = net.create_netns(ns)
            if kind == "bridge":
                net.create_veth(netnames.host_veth_name(cid), ns, engine.config.bridge_name,
                                mac=ep["mac"], cidr=f"{ep['ip']}/{ep['prefixlen']}", gateway=ep["gateway"])
            ep["active"] = True
            _write_endpoint(engine, ep)
            endpoints = _all_endpoints(engine)      # read once for the hosts files and the rules
            _write_container_files(engine, ep, endpoints=endpoints)
            if kind == "bridge":
                apply_rules(engine, endpoints)
                refresh_hosts(engine, endpoints)
        except BaseException:
            _teardown_id(engine, cid, ep)
            raise
        return path


def _endpoint_for(engine, record: Any) -> dict:
    cid = _container_id(record)
    ep = _read_endpoint(engine, cid)
    if ep is None:
        # A record from before networking was prepared (or whose lease was lost): prepare now
        # from the options it was created with. (--network none keeps no endpoint file.)
        opts = _get(record, "options") or {}
        prepared = prepare(engine, cid, {**opts,
                                         "name": _get(record, "name") or _get(opts, "name"),
                                         "labels": _get(record, "labels") or _get(opts, "labels") or {}})
        ep = _read_endpoint(engine, cid) or {**prepared, "active": False}
    return ep


def _names_from_record(ep: dict, record: Any) -> None:
    """The record's name and hostname win over what prepare saw (the lifecycle may pick a
    generated name after prepare)."""
    name = _get(record, "name")
    hostname = _get(_get(record, "config"), "Hostname")
    labels = _get(record, "labels") or {}
    if name:
        ep["name"] = name
    if hostname:
        ep["hostname"] = hostname
    if labels.get(SERVICE_LABEL):
        ep["aliases"] = [labels[SERVICE_LABEL]]
        ep["stack"] = labels.get(STACK_LABEL, "")


def _joined_netns(engine, ep: dict) -> str | None:
    target = _read_endpoint(engine, ep["container"])
    if target is None:
        raise ContainerNotFound(f"container {ep['container'][:12]} (--network container:) no longer exists")
    if target["mode"] == "host":
        _write_container_files(engine, ep, host_mode=True)
        return None
    if target["mode"].startswith("container:"):
        return _joined_netns(engine, target)
    ns = netnames.netns_name(target["id"])
    net = _adapter()
    if target.get("active") and net.netns_exists(ns):
        path = net.netns_path(ns)
    else:
        # a namespace runc made itself (--network none is left to runc): the process's own
        path = _process_netns(engine, target["id"])
        if path is None:
            raise ConflictError(f"cannot join the network of container {target['name']!r}: it is not running",
                                hint=f"start {target['name']} first")
    _write_container_files(engine, ep, like=target)
    return path


def _process_netns(engine, cid: str) -> str | None:
    try:
        rec = store.load(engine, cid) or {}
    except DockerMiniError:
        return None
    state = rec.get("state") or {}
    pid = state.get("pid")
    if state.get("status") != "running" or not pid:
        return None
    if not engine.processes.pid_alive(pid, state.get("pid_start")):
        return None         # it died unreaped: its pid may be another process's by now
    path = f"/proc/{pid}/ns/net"
    return path if os.path.exists(path) else None


def _ensure_bridge(engine) -> None:
    net = _adapter()
    bridge = engine.config.bridge_name
    subnet = _subnet(engine)
    if not net.link_exists(bridge):
        hits = ipam.overlapping(subnet.network, net.host_networks(exclude_ifname=bridge))
        if hits:
            raise NetworkError(f"bridge subnet {subnet.network} overlaps the host's " + "; ".join(hits),
                               hint=f"set another bridge-subnet in {engine.config.source}")
    net.ensure_bridge(bridge, f"{subnet.gateway}/{subnet.prefixlen}")
    net.enable_forwarding(bridge)


def apply_rules(engine, endpoints: list[dict] | None = None) -> None:
    """Replace our nftables table with one matching the active endpoints (one transaction)."""
    active = [e for e in (_all_endpoints(engine) if endpoints is None else endpoints)
              if e.get("active") and e["mode"] == "bridge" and e.get("bridge") == engine.config.bridge_name]
    eps = [nftables.Endpoint(e["id"], e["ip"], tuple(portmapping.PortMapping.from_dict(p) for p in e.get("ports", [])))
           for e in active]
    _adapter().nft_apply(nftables.render_ruleset(engine.config.bridge_name, engine.config.bridge_subnet, eps))


# ---------------------------------------------------------------------------------------------
# hosts and resolv.conf


def _container_file(engine, cid: str, name: str) -> str:
    return f"{engine.layout.container_dir(cid)}/{name}"


def _read_host_file(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _write_in_place(path: str, text: str) -> None:
    """Truncate and write: the file may be bind-mounted into a running container, where a
    rename would leave the container looking at the old inode."""
    if not os.path.isdir(os.path.dirname(path)):
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


def render_hosts_for(engine, ep: dict, endpoints: list[dict] | None = None) -> str:
    if endpoints is None:
        endpoints = _all_endpoints(engine)
    peers = [hostsfile.HostEntry(e["ip"], _names(e, seen_from=ep)) for e in endpoints
             if e["id"] != ep["id"] and e.get("active") and e["mode"] == "bridge" and e.get("ip")
             and e.get("bridge") == ep.get("bridge")]
    own = hostsfile.HostEntry(ep["ip"], _names(ep)) if ep.get("ip") else None
    return hostsfile.render_hosts(own, peers, hostname=ep.get("hostname"))


def _host_resolv_conf() -> str:
    return _read_host_file("/etc/resolv.conf") or ""


def _write_container_files(engine, ep: dict, *, host_mode: bool = False, like: dict | None = None,
                           endpoints: list[dict] | None = None) -> None:
    cid = ep["id"]
    if host_mode:
        hosts = _read_host_file("/etc/hosts")
        if hosts is None:
            hosts = hostsfile.render_hosts(None, hostname=ep.get("hostname"))
        _write_in_place(_container_file(engine, cid, "hosts"), hosts)
        _write_in_place(_container_file(engine, cid, "resolv.conf"), _host_resolv_conf())
        return
    _write_in_place(_container_file(engine, cid, "hosts"), render_hosts_for(engine, like or ep, endpoints))
    _write_in_place(_container_file(engine, cid, "resolv.conf"), resolvconf.render_resolv_conf(_host_resolv_conf()))


def refresh_hosts(engine, endpoints: list[dict] | None = None) -> None:
    """Rewrite /etc/hosts of every container set up on our bridge (and of those joined to them)."""
    if endpoints is None:
        endpoints = _all_endpoints(engine)
    by_id = {e["id"]: e for e in endpoints}
    for ep in endpoints:
        if not ep.get("active"):
            continue
        if ep["mode"] == "bridge":
            _write_in_place(_container_file(engine, ep["id"], "hosts"), render_hosts_for(engine, ep, endpoints))
        elif ep["mode"].startswith("container:") and ep.get("container") in by_id:
            target = by_id[ep["container"]]
            if target.get("ip"):
                _write_in_place(_container_file(engine, ep["id"], "hosts"),
                                render_hosts_for(engine, target, endpoints))


# ---------------------------------------------------------------------------------------------
# teardown (stop), release (rm), cleanup


def teardown(engine, record: Any) -> None:
    """Remove the container's veth, netns and port rules; the lease stays. Idempotent."""
    cid = _container_id(record)
    with engine.mutation():
        ep = _read_endpoint(engine, cid)
        _teardown_id(engine, cid, ep)


def _teardown_id(engine, cid: str, ep: dict | None) -> None:
    net = _adapter()
    net.delete_link(netnames.host_veth_name(cid))
    net.remove_netns(netnames.netns_name(cid))
    if not (ep and ep.get("active")):
        return          # the rules and the peers' hosts files hold active endpoints only
    ep["active"] = False
    if ep["mode"] == "bridge" and net.link_exists(engine.config.bridge_name):
        endpoints = [ep if e["id"] == cid else e for e in _all_endpoints(engine)]
        apply_rules(engine, endpoints)
        refresh_hosts(engine, endpoints)
    # inactive only once out of the rules and hosts files: a teardown killed before this line
    # is done again by the next command, which finds the endpoint still active
    _write_endpoint(engine, ep)


def release(engine, record: Any) -> None:
    """Forget the lease (at rm), after tearing down whatever is still set up."""
    cid = _container_id(record)
    with engine.mutation():
        ep = _read_endpoint(engine, cid)
        if ep and ep.get("active"):
            _teardown_id(engine, cid, ep)
        _forget_endpoint(engine, cid)


def _container_status(engine, cid: str) -> str | None:
    """The recorded status; "unreadable" for a torn record (left alone: `system check` repairs)."""
    try:
        rec = store.load(engine, cid)
    except DockerMiniError:
        return "unreadable"
    if rec is None:
        return None
    return (rec.get("state") or {}).get("status")


def cleanup_stale(engine, keep: str | None = None) -> list[str]:
    """Tear down what a killed command left: endpoints marked active (or with a netns or veth on
    the host) whose container is not running; leases whose container record is gone.
    Only this root's containers are considered: other roots may share the bridge."""
    net = _adapter()
    cleaned = []
    existing_ns = set(net.list_netns(netnames.NETNS_PREFIX))
    for ep in _all_endpoints(engine):
        cid = ep["id"]
        if cid == keep:
            continue
        status = _container_status(engine, cid)
        if status is None and not os.path.exists(engine.layout.container_dir(cid)):
            # the container is gone; a create killed before writing container.json, or an rm
            # killed before release
            _teardown_id(engine, cid, ep)
            _forget_endpoint(engine, cid)
            cleaned.append(cid)
            continue
        if status in ("running", "unreadable"):
            continue
        if ep.get("active") or netnames.netns_name(cid) in existing_ns:
            _teardown_id(engine, cid, ep)
            cleaned.append(cid)
    return cleaned


# ---------------------------------------------------------------------------------------------
# inspect, ls, prune


def network_settings(engine, record: Any) -> dict:
    """Docker's NetworkSettings for inspect."""
    cid = _container_id(record)
    ep = _read_endpoint(engine, cid) or _get(record, "network") or {}
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
        "SandboxKey": _adapter().netns_path(sandbox) if sandbox else "",
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
    net = _adapter()
    bridge = engine.config.bridge_name
    eps = [e for e in _all_endpoints(engine) if e["mode"] == "bridge" and e.get("bridge") == bridge]
    return [{
        "name": "bridge",
        "bridge": bridge,
        "subnet": engine.config.bridge_subnet,
        "gateway": str(_subnet(engine).gateway),
        "exists": net.link_exists(bridge),
        "containers": [{"id": e["id"], "name": e["name"], "ip": e["ip"], "mac": e["mac"],
                        "active": bool(e.get("active"))} for e in eps],
    }]


def prune(engine) -> list[str]:
    """Remove the bridge and our nftables table when no container uses them. Returns what went."""
    net = _adapter()
    bridge = engine.config.bridge_name
    with engine.mutation():
        cleanup_stale(engine)
        users = [e for e in _all_endpoints(engine)
                 if e.get("active") and e["mode"] == "bridge" and e.get("bridge") == bridge]
        if users:
            return []
        if net.bridge_ports(bridge):
            return []  # another docker-mini root still has containers on it
        return net.remove_bridge_and_table(bridge)
