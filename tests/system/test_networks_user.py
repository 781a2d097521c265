"""User-defined networks through the CLI: create/ls/inspect/rm/prune, containers on them,
isolation between networks, --internal. Real runc containers from the busybox test image;
traffic goes only to the test's own containers."""

from __future__ import annotations

import ipaddress
import json
import subprocess

from reconciler.adapters import network as netadapter
from reconciler.core import nftables

SERVE = "mkdir -p /www && echo hello-from-{name} > /www/index.html && exec httpd -f -p 80 -h /www"
FETCH = "for i in $(seq 60); do wget -qO- {url} && exit 0; sleep 0.05; done; exit 1"


def _inspect_net(dm, name) -> dict:
    return json.loads(dm("network", "inspect", name).stdout)[0]


def _serve(dm, image, name, *args):
    dm("run", "-d", "--name", name, *args, image, "sh", "-c", SERVE.format(name=name))


def _ip(dm, name, network) -> str:
    return json.loads(dm("inspect", name).stdout)[0]["NetworkSettings"]["Networks"][network]["IPAddress"]


def test_network_objects_create_ls_inspect_rm(dmnet, user_subnets, test_network):
    subnet = user_subnets[0]
    gw = str(ipaddress.IPv4Network(subnet).network_address + 254)
    nid = dmnet("network", "create", "--subnet", subnet, "--gateway", gw, "--label", "team=web",
                "front").stdout.strip()
    assert len(nid) == 64
    auto_id = dmnet("network", "create", "back").stdout.strip()

    lines = dmnet("network", "ls").stdout.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert set(rows) == {"bridge", "front", "back", "host", "none"}
    assert rows["front"] == [nid[:12], "front", "bridge", "local"]
    assert rows["host"][2:] == ["host", "local"] and rows["none"][2:] == ["null", "local"]
    assert nid[:12] in dmnet("network", "ls", "-q").stdout.split()
    listed = {n["Name"]: n for n in json.loads(dmnet("network", "ls", "--format", "json").stdout)}
    assert listed["bridge"]["IPAM"]["Config"] == [{"Subnet": test_network["bridge-subnet"],
                                                   "Gateway": str(ipaddress.IPv4Network(
                                                       test_network["bridge-subnet"]).network_address + 1)}]

    front = _inspect_net(dmnet, "front")
    assert (front["Name"], front["Id"], front["Driver"], front["Scope"]) == ("front", nid, "bridge", "local")
    assert front["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gw}]
    assert front["Labels"] == {"team": "web"} and front["Internal"] is False
    back = _inspect_net(dmnet, auto_id[:12])
    auto = ipaddress.IPv4Network(back["IPAM"]["Config"][0]["Subnet"])
    assert auto.prefixlen == 26 and auto.subnet_of(ipaddress.IPv4Network(user_subnets[4]))

    # names are unique, subnets never overlap another network's, reserved names are refused
    assert "already exists" in dmnet("network", "create", "front", check=False).stderr
    clash = dmnet("network", "create", "--subnet", subnet, "other", check=False)
    assert clash.returncode != 0 and "overlaps" in clash.stderr
    clash = dmnet("network", "create", "--subnet", test_network["bridge-subnet"], "other", check=False)
    assert clash.returncode != 0 and "overlaps" in clash.stderr
    assert dmnet("network", "create", "host", check=False).returncode != 0
    assert "not found" in dmnet("network", "inspect", "nope", check=False).stderr
    assert dmnet("network", "rm", "bridge", check=False).returncode != 0

    assert dmnet("network", "rm", "front").stdout.split() == ["front"]
    assert dmnet("network", "prune", "-f").stdout.splitlines()[:2] == ["Deleted Networks:", "back"]
    assert {n["Name"] for n in json.loads(dmnet("network", "ls", "--format", "json").stdout)} == \
        {"bridge", "host", "none"}
    assert not list((dmnet.root / "networks").glob("*.json"))


def test_containers_on_a_network_reach_each_other_and_nothing_else(dmnet, busybox_ref, user_subnets):
    dmnet("network", "create", "--subnet", user_subnets[0], "front")
    dmnet("network", "create", "--subnet", user_subnets[1], "back")
    _serve(dmnet, busybox_ref, "web", "--network", "front")
    _serve(dmnet, busybox_ref, "db", "--network", "back")
    _serve(dmnet, busybox_ref, "plain")                     # the default network
    web_ip = _ip(dmnet, "web", "front")
    assert ipaddress.IPv4Address(web_ip) in ipaddress.IPv4Network(user_subnets[0])

    info = _inspect_net(dmnet, "front")
    (cid, c), = info["Containers"].items()
    assert c["Name"] == "web" and c["IPv4Address"] == f"{web_ip}/24" and c["MacAddress"]
    bridge = info["Options"]["com.docker.network.bridge.name"]
    assert netadapter.link_exists(bridge)

    # on the same network: by name and by address
    same = dmnet("run", "--rm", "--network", "front", busybox_ref, "sh", "-c", FETCH.format(url="http://web/"))
    assert same.stdout == "hello-from-web\n"
    # from another network or the default one: neither the name nor the address answers
    for net in ("back", "bridge"):
        other = dmnet("run", "--rm", "--network", net, busybox_ref, "sh", "-c",
                      f"timeout 3 wget -qO- http://{web_ip}/; grep -c web /etc/hosts", check=False)
        assert "hello-from-web" not in other.stdout and other.stdout.strip().endswith("0"), other
    db_ip = _ip(dmnet, "db", "back")
    other = dmnet("run", "--rm", "--network", "front", busybox_ref, "sh", "-c",
                  f"timeout 3 wget -qO- http://{db_ip}/ || echo unreachable", check=False)
    assert other.stdout == "unreachable\n"

    refused = dmnet("network", "rm", "front", check=False)
    assert refused.returncode != 0 and "web" in refused.stderr
    assert dmnet("run", "--network", "nope", busybox_ref, "true", check=False).returncode != 0

    dmnet("rm", "-f", "web", "db", "plain")
    dmnet("network", "rm", "front", "back")
    assert not netadapter.link_exists(bridge)
    assert netadapter.nft_table_text("ip", nftables.table_name(bridge)) is None


def test_an_internal_network_has_no_route_out(dmnet, busybox_ref, user_subnets):
    dmnet("network", "create", "--internal", "--subnet", user_subnets[2], "vault")
    assert _inspect_net(dmnet, "vault")["Internal"] is True
    _serve(dmnet, busybox_ref, "safe", "--network", "vault")
    routes = dmnet("run", "--rm", "--network", "vault", busybox_ref, "sh", "-c",
                   f"ip route; {FETCH.format(url='http://safe/')}").stdout
    assert "default" not in routes and "hello-from-safe" in routes
    refused = dmnet("run", "--rm", "--network", "vault", "-p", "80", busybox_ref, "true", check=False)
    assert refused.returncode != 0 and "internal" in refused.stderr
    bridge = _inspect_net(dmnet, "vault")["Options"]["com.docker.network.bridge.name"]
    table = netadapter.nft_table_text("ip", nftables.table_name(bridge))
    assert "masquerade" not in table.split("ct status dnat")[0].split("postrouting")[1].split("127.0.0.0/8")[0]
    dmnet("rm", "-f", "safe")
    dmnet("network", "rm", "vault")
    assert not netadapter.link_exists(bridge)


def test_a_container_without_ports_does_not_reload_the_rules(dmnet, busybox_ref, test_network):
    """nft runs only when the table's text changes: a container without published ports changes
    none, so starting one leaves the loaded table (and its handle numbers) as they were."""
    _serve(dmnet, busybox_ref, "first")
    table = nftables.table_name(test_network["bridge-name"])
    before = subprocess.run(["nft", "-a", "list", "table", "ip", table], capture_output=True, text=True).stdout
    dmnet("run", "--rm", busybox_ref, "true")
    after = subprocess.run(["nft", "-a", "list", "table", "ip", table], capture_output=True, text=True).stdout
    assert before and before == after


def test_connect_and_disconnect_a_running_container(dmnet, busybox_ref, user_subnets):
    dmnet("network", "create", "--subnet", user_subnets[0], "front")
    dmnet("network", "create", "--subnet", user_subnets[1], "back")
    _serve(dmnet, busybox_ref, "db", "--network", "back")
    _serve(dmnet, busybox_ref, "web", "--network", "front")
    dmnet("run", "-d", "--name", "app", "--network", "front", busybox_ref, "sleep", "1000")
    db_ip = str(ipaddress.IPv4Network(user_subnets[1]).network_address + 40)

    def in_app(cmd):
        return dmnet("exec", "app", "sh", "-c", cmd, check=False).stdout

    assert "unreachable" in in_app("timeout 3 wget -qO- http://db/ || echo unreachable")
    dmnet("network", "connect", "--ip", db_ip, "--alias", "api", "back", "app")
    assert "eth1" in in_app("ip -o addr show eth1") and f"{db_ip}/24" in in_app("ip -o addr show eth1")
    assert in_app(FETCH.format(url="http://db/")) == "hello-from-db\n"
    assert in_app(FETCH.format(url="http://web/")) == "hello-from-web\n"      # still on front
    # db learns app's name and alias on the network they share, web does not learn the alias
    db_hosts = dmnet("exec", "db", "cat", "/etc/hosts").stdout
    assert any(line.startswith(db_ip) and "app" in line and "api" in line for line in db_hosts.splitlines())
    assert "api" not in dmnet("exec", "web", "cat", "/etc/hosts").stdout
    settings = json.loads(dmnet("inspect", "app").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(settings) == {"front", "back"} and settings["back"]["IPAddress"] == db_ip
    assert "app" in [c["Name"] for c in _inspect_net(dmnet, "back")["Containers"].values()]
    assert "already connected" in dmnet("network", "connect", "back", "app", check=False).stderr

    # kept across a restart
    dmnet("restart", "-t", "0", "app")
    assert in_app(FETCH.format(url="http://db/")) == "hello-from-db\n"

    dmnet("network", "disconnect", "back", "app")
    assert "unreachable" in in_app(f"timeout 3 wget -qO- http://{db_ip}/ || echo unreachable")
    assert "eth1" not in in_app("ip -o link")
    assert "app" not in dmnet("exec", "db", "cat", "/etc/hosts").stdout
    assert dmnet("network", "disconnect", "front", "app", check=False).returncode != 0
    dmnet("rm", "-f", "app", "web", "db")
    dmnet("network", "rm", "front", "back")


def test_run_on_two_networks_with_an_alias_and_a_static_address(dmnet, busybox_ref, user_subnets):
    dmnet("network", "create", "--subnet", user_subnets[0], "front")
    dmnet("network", "create", "--subnet", user_subnets[1], "back")
    ip = str(ipaddress.IPv4Network(user_subnets[0]).network_address + 77)
    mac = "02:00:00:aa:bb:cc"
    _serve(dmnet, busybox_ref, "api", "--network", "front", "--network", "back", "--ip", ip,
           "--mac-address", mac, "--network-alias", "gateway-svc")
    settings = json.loads(dmnet("inspect", "api").stdout)[0]["NetworkSettings"]["Networks"]
    assert settings["front"]["IPAddress"] == ip and settings["front"]["MacAddress"] == mac
    assert ipaddress.IPv4Address(settings["back"]["IPAddress"]) in ipaddress.IPv4Network(user_subnets[1])
    for net, name in (("front", "gateway-svc"), ("back", "api")):
        out = dmnet("run", "--rm", "--network", net, busybox_ref, "sh", "-c", FETCH.format(url=f"http://{name}/"))
        assert out.stdout == "hello-from-api\n"
    # the alias is the first network's: not a name on back
    hosts = dmnet("run", "--rm", "--network", "back", busybox_ref, "cat", "/etc/hosts").stdout
    assert "gateway-svc" not in hosts and "api" in hosts
    bad = dmnet("run", "--rm", "--network", "none", "--network-alias", "x", busybox_ref, "true", check=False)
    assert bad.returncode != 0 and "--network-alias" in bad.stderr
    dmnet("rm", "-f", "api")
    dmnet("network", "rm", "front", "back")


def test_add_host_dns_and_the_host_network_hostname(dmnet, busybox_ref):
    out = dmnet("run", "--rm", "--add-host", "db.internal:10.1.2.3", "--dns", "192.0.2.53",
                "--dns-search", "example.test", busybox_ref, "sh", "-c",
                "cat /etc/hosts; echo ---; cat /etc/resolv.conf").stdout
    hosts, resolv = out.split("---\n")
    assert "10.1.2.3\tdb.internal" in hosts.splitlines()
    assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == ["nameserver 192.0.2.53"]
    assert "search example.test" in resolv.splitlines()
    host = dmnet("run", "--rm", "--network", "host", "--add-host", "h:10.9.9.9", busybox_ref, "sh", "-c",
                 "hostname; grep -c 10.9.9.9 /etc/hosts").stdout.split()
    import socket
    assert host == [socket.gethostname(), "1"]
    bad = dmnet("run", "--rm", "--add-host", "nocolon", busybox_ref, "true", check=False)
    assert bad.returncode != 0 and "--add-host" in bad.stderr and "Traceback" not in bad.stderr
    bad = dmnet("run", "--rm", "--network", "none", "--dns", "1.1.1.1", busybox_ref, "true", check=False)
    assert bad.returncode != 0 and "--dns" in bad.stderr


def test_port_lists_the_mappings(dmnet, busybox_ref):
    from tests.fixtures.registry import free_port
    hp = free_port()
    dmnet("run", "-d", "--name", "pub", "-p", f"127.0.0.1:{hp}:80", "-p", "53/udp", busybox_ref, "sleep", "1000")
    lines = dmnet("port", "pub").stdout.splitlines()
    assert f"80/tcp -> 127.0.0.1:{hp}" in lines and any(line.startswith("53/udp -> 0.0.0.0:") for line in lines)
    assert dmnet("port", "pub", "80").stdout == f"127.0.0.1:{hp}\n"
    assert dmnet("port", "pub", "81", check=False).returncode != 0
    dmnet("rm", "-f", "pub")


def test_publish_all_puts_exposed_ports_on_host_ports(dmnet, nginx_image):
    """-P: the image's ExposedPorts (80/tcp here) each on a free host port; port lists them."""
    import urllib.request
    dmnet("run", "-d", "--name", "web", "-P", nginx_image)
    (line,) = dmnet("port", "web").stdout.splitlines()
    assert line.startswith("80/tcp -> 0.0.0.0:")
    host_port = int(line.rsplit(":", 1)[1])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(100):
        try:
            with opener.open(f"http://127.0.0.1:{host_port}/", timeout=5) as r:
                assert r.status == 200
                break
        except OSError:
            import time
            time.sleep(0.05)
    else:
        raise AssertionError("nginx did not answer on the published port")
    dmnet("rm", "-f", "web")


def test_a_stopped_container_connected_is_wired_when_it_starts(dmnet, busybox_ref, user_subnets):
    dmnet("network", "create", "--subnet", user_subnets[0], "front")
    dmnet("network", "create", "--subnet", user_subnets[1], "back")
    _serve(dmnet, busybox_ref, "db", "--network", "back")
    dmnet("create", "--name", "app", "--network", "front", busybox_ref, "sh", "-c", FETCH.format(url="http://db/"))
    dmnet("network", "connect", "back", "app")
    assert "back" in json.loads(dmnet("inspect", "app").stdout)[0]["NetworkSettings"]["Networks"]
    assert dmnet("start", "-a", "app").stdout == "hello-from-db\n"
    dmnet("rm", "-f", "app", "db")
    dmnet("network", "rm", "front", "back")
