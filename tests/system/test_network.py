"""Networking below the container lifecycle: real netns, veths, bridge and nftables, with busybox
httpd run in a container's namespace by `ip netns exec`. Traffic goes only to loopback and to
the test containers' addresses on the test run's own bridge."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
import subprocess
import urllib.request

import pytest

from reconciler.adapters import network as netadapter
from reconciler.adapters import statefiles
from reconciler.core import ipam, netnames, nftables
from reconciler.core.config import parse_config
from reconciler.core.errors import ConflictError, InvalidArgument, NetworkError
from reconciler.engine import network


def _get(url: str) -> str:
    # no proxy: the request must go straight to the container / loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as r:
        return r.read().decode()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def docroot(tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_text("hello from the container\n")
    return d


def _subnet(test_network) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(test_network["bridge-subnet"])


def test_host_reaches_container_by_ip_and_published_port_on_loopback(fake_containers, docroot, test_network):
    port = _free_port()
    web = fake_containers.create("web", ports=[f"{port}:80"])
    path = fake_containers.start(web)
    assert Path(path) == Path("/run/netns", netnames.netns_name(web["id"]))
    fake_containers.httpd(web, docroot)
    ip = web["network"]["ip"]
    assert ipaddress.IPv4Address(ip) in _subnet(test_network)
    assert _get(f"http://{ip}/") == "hello from the container\n"
    assert _get(f"http://127.0.0.1:{port}/") == "hello from the container\n"
    # any of the host's own addresses: the test bridge's gateway is one
    assert _get(f"http://{web['network']['gateway']}:{port}/") == "hello from the container\n"
    # and from another container through the host's address (hairpin NAT)
    client = fake_containers.create("client")
    fake_containers.start(client)
    out = fake_containers.exec(client, "busybox", "wget", "-qO-", f"http://{web['network']['gateway']}:{port}/")
    assert out.stdout == "hello from the container\n", out.stderr


def test_two_containers_talk_by_ip_and_name(fake_containers, docroot, net_engine):
    web = fake_containers.create("web", labels={"io.docker-mini.stack": "shop",
                                                 "io.docker-mini.service": "websvc"})
    fake_containers.start(web)
    client = fake_containers.create("client", labels={"io.docker-mini.stack": "shop"})
    fake_containers.start(client)
    fake_containers.httpd(web, docroot)

    by_ip = fake_containers.exec(client, "busybox", "wget", "-qO-", f"http://{web['network']['ip']}/")
    assert by_ip.stdout == "hello from the container\n", by_ip.stderr
    # names resolve through the container's /etc/hosts (bind-mounted by the lifecycle; read here)
    hosts = (Path(net_engine.layout.container_dir(client["id"])) / "hosts").read_text()
    assert f"{web['network']['ip']}\t{web['id'][:12]} web websvc" in hosts.splitlines()
    own = (Path(net_engine.layout.container_dir(web["id"])) / "hosts").read_text()
    assert f"{client['network']['ip']}\t{client['id'][:12]} client" in own.splitlines()


def test_interface_inside_has_ip_mac_route_and_loopback(fake_containers):
    c = fake_containers.create("box", ip=None, mac="02:aa:bb:cc:dd:ee")
    fake_containers.start(c)
    out = fake_containers.exec(c, "ip", "-j", "addr").stdout
    links = {link["ifname"]: link for link in json.loads(out)}
    assert set(links) == {"lo", "eth0"}
    assert "UP" in links["lo"]["flags"]
    eth0 = links["eth0"]
    assert eth0["address"] == "02:aa:bb:cc:dd:ee"
    inet = [a for a in eth0["addr_info"] if a["family"] == "inet"]
    assert [(a["local"], a["prefixlen"]) for a in inet] == [(c["network"]["ip"], c["network"]["prefixlen"])]
    route = fake_containers.exec(c, "ip", "route", "show", "default").stdout
    assert route.startswith(f"default via {c['network']['gateway']} dev eth0")


def test_lease_kept_across_stop_start_and_freed_by_rm(fake_containers, net_engine):
    a = fake_containers.create("a")
    fake_containers.start(a)
    ip, mac = a["network"]["ip"], a["network"]["mac"]
    assert mac == ipam.mac_for_ip(ip)
    fake_containers.stop(a)
    assert not netadapter.netns_exists(netnames.netns_name(a["id"]))
    assert not netadapter.link_exists(netnames.host_veth_name(a["id"]))
    # another container created while a is stopped does not take a's address
    b = fake_containers.create("b")
    assert b["network"]["ip"] != ip
    fake_containers.start(a)
    addr = json.loads(fake_containers.exec(a, "ip", "-j", "addr", "show", "eth0").stdout)[0]
    assert addr["address"] == mac
    assert any(i["local"] == ip for i in addr["addr_info"])
    fake_containers.rm(a)
    c = fake_containers.create("c")
    assert c["network"]["ip"] == ip   # the lowest free address again


@pytest.mark.parametrize("opts,error,message", [
    ({"ip": "SAME"}, ConflictError, "address already used by container 'first'"),
    ({"mac": "SAME"}, ConflictError, "already used by container 'first'"),
    ({"ip": "OUTSIDE"}, InvalidArgument, "outside the bridge subnet"),
    ({"ip": "GATEWAY"}, InvalidArgument, "gateway"),
    ({"mac": "01:00:5e:00:00:01"}, InvalidArgument, "multicast"),
    ({"mac": "zz:00:5e:00:00:01"}, InvalidArgument, "not a MAC address"),
    ({"ports": ["PORT:81"]}, ConflictError, "already published by container 'first'"),
    ({"network": "none", "ports": ["8080:80"]}, InvalidArgument, "cannot be used with --network none"),
    ({"ports": ["192.0.2.254:8080:80"]}, InvalidArgument, "192.0.2.254 is not an address of this host"),
    ({"network": "container:nosuch"}, Exception, "no such container: nosuch"),
])
def test_conflicting_or_bad_options_refused_before_anything_is_created(
        fake_containers, net_engine, test_network, opts, error, message):
    port = _free_port()
    first = fake_containers.create("first", mac="02:42:00:00:00:07", ports=[f"{port}:80"])
    subnet = _subnet(test_network)
    subst = {"SAME": None, "OUTSIDE": str(subnet.broadcast_address + 2), "GATEWAY": str(subnet.network_address + 1)}
    real = {}
    for k, v in opts.items():
        if v == "SAME":
            v = first["network"][k]
        elif isinstance(v, str) and v in subst:
            v = subst[v]
        elif k == "ports":
            v = [p.replace("PORT", str(port)) for p in v]
        real[k] = v
    before = sorted(os.listdir(Path(net_engine.layout.network_dir) / "endpoints"))
    with pytest.raises(error, match=message):
        network.prepare(net_engine, "f" * 64, {"name": "second", **real})
    assert sorted(os.listdir(Path(net_engine.layout.network_dir) / "endpoints")) == before
    assert not netadapter.netns_exists(netnames.netns_name("f" * 64))


def test_port_a_host_process_listens_on_refused(fake_containers):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConflictError, match=f"port 127.0.0.1:{port}/tcp is already in use by a process"):
            fake_containers.create("a", ports=[f"127.0.0.1:{port}:80"])
        with pytest.raises(ConflictError, match=f"port 0.0.0.0:{port}/tcp is already in use"):
            fake_containers.create("a", ports=[f"{port}:80"])
        b = fake_containers.create("b", ports=[f"{port}:80/udp"])    # udp is another port
    # and at start: a host process that took the port since create
    port2 = _free_port()
    c = fake_containers.create("c", ports=[f"{port2}:80"])
    with socket.socket() as s:
        s.bind(("0.0.0.0", port2))
        s.listen()
        with pytest.raises(ConflictError, match="already in use"):
            fake_containers.start(c)
    fake_containers.start(c)
    fake_containers.start(b)


def test_subnet_overlapping_a_host_address_refused(root, tmp_path, no_network_leaks, test_network):
    """An interface of the test's own carries an address inside the subnet asked for."""
    from reconciler.engine.engine import Engine
    dummy = f"dmo{os.getpid() % 100000}"
    base = _subnet(test_network)
    taken = ipaddress.IPv4Network(f"{base.network_address + 64}/26")
    subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{taken.network_address + 1}/26", "dev", dummy], check=True)
        engine = Engine(root, parse_config(json.dumps(test_network), source="constants.json"))
        rec = {"id": "e" * 64}
        Path(engine.layout.container_dir(rec["id"])).mkdir(parents=True)
        network.prepare(engine, rec["id"], {"name": "x"})
        with pytest.raises(NetworkError, match=f"overlaps the host's address on {dummy}: {taken}") as exc:
            network.setup(engine, rec)
        assert "bridge-subnet" in str(exc.value)
        assert not netadapter.link_exists(test_network["bridge-name"])
        network.release(engine, rec)
    finally:
        subprocess.run(["ip", "link", "del", dummy], check=False)


def test_table_replaced_atomically_other_tables_untouched(fake_containers, test_network, net_engine):
    bridge = test_network["bridge-name"]
    other = f"dmt-other-{os.getpid()}"
    netadapter.nft_apply(f"table inet {other} {{\n chain c {{\n type filter hook input priority 10;\n"
                         f" tcp dport 9 counter accept\n }}\n}}\n")
    try:
        other_before = netadapter.nft_table_text("inet", other)
        p1, p2 = _free_port(), _free_port()
        a = fake_containers.create("a", ports=[f"{p1}:80"])
        fake_containers.start(a)
        ours = netadapter.nft_table_text("ip", nftables.table_name(bridge))
        assert f"tcp dport {p1} dnat to {a['network']['ip']}:80" in ours
        b = fake_containers.create("b", ports=[f"127.0.0.1:{p2}:80/udp"])
        fake_containers.start(b)
        ours = netadapter.nft_table_text("ip", nftables.table_name(bridge))
        # a in prerouting and output; b is on loopback, so only in output (host-local clients)
        assert ours.count("dnat to") == 3
        # a ruleset nft refuses half-way changes nothing: the transaction is all or nothing
        broken = nftables.render_ruleset(bridge, test_network["bridge-subnet"], []).replace(
            "masquerade", "masquerade to :nonsense", 1)
        with pytest.raises(NetworkError, match="nft refused"):
            netadapter.nft_apply(broken)
        assert netadapter.nft_table_text("ip", nftables.table_name(bridge)) == ours
        fake_containers.stop(a)
        ours = netadapter.nft_table_text("ip", nftables.table_name(bridge))
        assert f"dport {p1}" not in ours and f"dport {p2}" in ours
        assert netadapter.nft_table_text("inet", other) == other_before
    finally:
        netadapter.nft_apply(f"table inet {other}\ndelete table inet {other}\n")


def test_hosts_rewritten_in_place_as_peers_come_and_go(fake_containers, net_engine):
    a = fake_containers.create("a")
    fake_containers.start(a)
    hosts = Path(net_engine.layout.container_dir(a["id"])) / "hosts"
    inode = os.stat(hosts).st_ino
    b = fake_containers.create("b")
    fake_containers.start(b)
    assert f"{b['network']['ip']}\t{b['id'][:12]} b" in hosts.read_text().splitlines()
    fake_containers.stop(b)
    assert b["network"]["ip"] not in hosts.read_text()
    assert os.stat(hosts).st_ino == inode       # the bind-mounted file itself was rewritten
    resolv = (Path(net_engine.layout.container_dir(a["id"])) / "resolv.conf").read_text()
    assert "nameserver" in resolv and "nameserver 127." not in resolv


def test_none_mode_has_only_loopback(fake_containers):
    c = fake_containers.create("lonely", network="none")
    path = fake_containers.start(c)
    assert path and os.path.exists(path)
    links = json.loads(fake_containers.exec(c, "ip", "-j", "link").stdout)
    assert [(link["ifname"], "UP" in link["flags"]) for link in links] == [("lo", True)]
    assert network.network_settings(fake_containers.engine, c)["IPAddress"] == ""


def test_host_mode_uses_the_host_namespace(fake_containers):
    c = fake_containers.create("hosty", network="host")
    assert fake_containers.start(c) is None
    assert not netadapter.netns_exists(netnames.netns_name(c["id"]))


def test_container_mode_joins_the_other_namespace(fake_containers, docroot):
    web = fake_containers.create("web")
    web_ns = fake_containers.start(web)
    side = fake_containers.create("side", network="container:web")
    assert fake_containers.start(side) == web_ns
    fake_containers.httpd(web, docroot, port=8081)
    # the sidecar's /etc/hosts is web's view, and follows web's peers
    peer = fake_containers.create("peer")
    fake_containers.start(peer)
    side_hosts = Path(fake_containers.engine.layout.container_dir(side["id"])) / "hosts"
    assert f"{peer['network']['ip']}\t{peer['id'][:12]} peer" in side_hosts.read_text().splitlines()
    assert f"{web['network']['ip']}\t{web['id'][:12]} web" in side_hosts.read_text().splitlines()
    # the sidecar sees web's eth0 and reaches web's server on its own loopback
    out = subprocess.run(["nsenter", f"--net={web_ns}", "busybox", "wget", "-qO-", "http://127.0.0.1:8081/"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "hello from the container\n"
    fake_containers.stop(web)
    with pytest.raises(ConflictError, match="it is not running"):
        network.setup(fake_containers.engine, side)


def test_next_command_cleans_what_a_killed_one_left(fake_containers, net_engine):
    """A CLI killed after wiring the network but before the container ran leaves a netns and a
    veth behind; the next command that touches networking removes them."""
    a = fake_containers.create("a")
    b = fake_containers.create("b")
    fake_containers.start(a)
    fake_containers.set_status(a, "created")   # as if `start` died before runc ran
    # and one killed between `netns create` and the veth
    netadapter.create_netns(netnames.netns_name(b["id"]))
    # and a create killed after the lease was written, before its record existed
    statefiles.write_json(f"{net_engine.layout.network_dir}/endpoints/{'9' * 64}.json",
                       {"id": "9" * 64, "mode": "bridge", "name": "ghost", "ip": "10.0.0.9", "active": False})
    assert netadapter.link_exists(netnames.host_veth_name(a["id"]))
    network.prepare(net_engine, "8" * 64, {"name": "next"})
    assert not netadapter.link_exists(netnames.host_veth_name(a["id"]))
    assert not netadapter.netns_exists(netnames.netns_name(a["id"]))
    assert not netadapter.netns_exists(netnames.netns_name(b["id"]))
    assert not (Path(net_engine.layout.network_dir) / "endpoints" / ("9" * 64 + ".json")).exists()
    # the lease itself survives: a keeps its address for its next start
    fake_containers.start(a)
    assert network.network_settings(net_engine, a)["IPAddress"] == a["network"]["ip"]
    network.release(net_engine, {"id": "8" * 64})


def test_setup_is_idempotent(fake_containers, docroot):
    a = fake_containers.create("a")
    fake_containers.start(a)
    fake_containers.start(a)   # again, e.g. after a killed start: replaces, never duplicates
    fake_containers.httpd(a, docroot)
    assert _get(f"http://{a['network']['ip']}/") == "hello from the container\n"


def test_inspect_settings(fake_containers):
    port = _free_port()
    a = fake_containers.create("a", ports=[f"127.0.0.1:{port}:80", f"{port}:53/udp"])
    fake_containers.start(a)
    s = network.network_settings(fake_containers.engine, a)
    assert s["IPAddress"] == a["network"]["ip"]
    assert s["MacAddress"] == a["network"]["mac"]
    assert s["Gateway"] == a["network"]["gateway"]
    assert s["IPPrefixLen"] == a["network"]["prefixlen"]
    assert s["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}],
                          "53/udp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert s["Networks"]["bridge"]["IPAddress"] == a["network"]["ip"]


def test_prune_removes_bridge_and_table_only_when_unused(fake_containers, test_network, net_engine):
    bridge = test_network["bridge-name"]
    a = fake_containers.create("a")
    fake_containers.start(a)
    assert network.prune(net_engine) == []
    assert netadapter.link_exists(bridge)
    fake_containers.rm(a)
    assert netadapter.link_exists(bridge)      # like Docker: the bridge outlives its containers
    assert sorted(network.prune(net_engine)) == [f"bridge {bridge}", f"nftables table ip {nftables.table_name(bridge)}"]
    assert not netadapter.link_exists(bridge)
    assert netadapter.nft_table_text("ip", nftables.table_name(bridge)) is None


KILLER = r"""
import json, os, signal, sys
from reconciler.adapters import network as adapter
from reconciler.core.config import parse_config
from reconciler.engine.engine import Engine
from reconciler.engine import network

root, config, cid, point = sys.argv[1:5]
real = getattr(adapter, point)
def die_after(*a, **kw):
    real(*a, **kw)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(adapter, point, die_after)
engine = Engine(root, parse_config(config))
network.setup(engine, {"id": cid})
"""


@pytest.mark.parametrize("point", ["create_netns", "create_veth", "nft_apply"])
def test_cli_killed_mid_setup_leaves_nothing_after_the_next_command(fake_containers, net_engine, test_network,
                                                                    point):
    import sys
    port = _free_port()
    a = fake_containers.create("a", ports=[f"{port}:80"])
    proc = subprocess.run([sys.executable, "-c", KILLER, str(net_engine.root), json.dumps(test_network),
                           a["id"], point], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert netadapter.netns_exists(netnames.netns_name(a["id"]))
    table = netadapter.nft_table_text("ip", nftables.table_name(test_network["bridge-name"])) or ""
    assert (f"dport {port} " in table) == (point == "nft_apply")
    network.prepare(net_engine, "7" * 64, {"name": "next"})    # any later networking command
    assert not netadapter.netns_exists(netnames.netns_name(a["id"]))
    assert not netadapter.link_exists(netnames.host_veth_name(a["id"]))
    table = netadapter.nft_table_text("ip", nftables.table_name(test_network["bridge-name"])) or ""
    assert f"dport {port} " not in table
    network.release(net_engine, {"id": "7" * 64})
    fake_containers.start(a)     # and the container starts normally afterwards
    assert network.network_settings(net_engine, a)["SandboxKey"]


def test_container_created_under_another_bridge_config_is_refused_clearly(fake_containers, root, test_network):
    from reconciler.engine.engine import Engine
    a = fake_containers.create("a")
    other = Engine(root, parse_config(json.dumps({"bridge-name": "dmtother0", "bridge-subnet": "10.254.254.0/24"}),
                                      source="new.json"))
    with pytest.raises(NetworkError, match=r"created on bridge .* but new.json now configures dmtother0") as e:
        network.setup(other, a)
    assert "recreate the container" in str(e.value)
    assert not netadapter.link_exists("dmtother0")


UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
data, peer = s.recvfrom(100)
s.sendto(data.upper(), peer)
"""


def test_udp_port_published_on_loopback(fake_containers):
    import socket
    import sys
    port = _free_port()
    c = fake_containers.create("dns", ports=[f"127.0.0.1:{port}:53/udp"])
    fake_containers.start(c)
    server = subprocess.Popen(["ip", "netns", "exec", netnames.netns_name(c["id"]), sys.executable, "-c", UDP_ECHO],
                              stdout=subprocess.PIPE, text=True)
    fake_containers.procs.append(server)
    assert server.stdout.readline() == "ready\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(b"ping", ("127.0.0.1", port))
        data, peer = s.recvfrom(100)
    assert (data, peer) == (b"PING", ("127.0.0.1", port))   # the answer comes back un-NATed


def test_host_port_chosen_when_not_given_and_kept_across_restarts(fake_containers, docroot):
    c = fake_containers.create("web", ports=["80", "127.0.0.1::81"])
    ports = network.network_settings(fake_containers.engine, c)["Ports"]
    any_port, lo_port = int(ports["80/tcp"][0]["HostPort"]), int(ports["81/tcp"][0]["HostPort"])
    assert ports["81/tcp"][0]["HostIp"] == "127.0.0.1"
    assert 0 not in (any_port, lo_port) and any_port != lo_port
    fake_containers.start(c)
    fake_containers.httpd(c, docroot)
    assert _get(f"http://127.0.0.1:{any_port}/") == "hello from the container\n"
    fake_containers.stop(c)
    fake_containers.start(c)
    assert network.network_settings(fake_containers.engine, c)["Ports"] == ports


def test_a_dead_targets_reused_pid_is_not_joined(net_engine):
    """--network container:X joins X's process's namespace; if X died unreaped and its pid now
    belongs to another process, that process's namespace must not be taken for X's."""
    from reconciler.adapters import runtime as rt
    from reconciler.adapters import statefiles
    cid = "e" * 64
    me = os.getpid()
    record = {"id": cid, "state": {"status": "running", "pid": me, "pid_start": rt.process_start_time(me)}}
    statefiles.write_json(f"{net_engine.layout.container_dir(cid)}/container.json", record)
    assert network.process_netns(net_engine, cid) == f"/proc/{me}/ns/net"
    record["state"]["pid_start"] -= 1               # the pid now names a younger process
    statefiles.write_json(f"{net_engine.layout.container_dir(cid)}/container.json", record)
    assert network.process_netns(net_engine, cid) is None
