"""Networking end to end through the CLI: real runc containers from the busybox test image on
the test run's own bridge. Traffic goes only to loopback and to the test containers."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
import urllib.request

import pytest

from reconciler.adapters import network as netadapter
from reconciler.core import ipam, netnames, nftables
from tests.fixtures.registry import free_port

SERVE = "mkdir -p /www && echo hello-from-{name} > /www/index.html && exec httpd -f -p 80 -h /www"
# wget until the server answers (the server starts in the background of `run -d`)
FETCH = "for i in $(seq 100); do wget -qO- {url} && exit 0; sleep 0.05; done; exit 1"


@pytest.fixture
def dmn(dm, no_network_leaks):
    """The `dm` CLI runner; every container of the test is removed afterwards (rm -f), so the leak
    check that follows sees only what rm itself failed to remove."""
    yield dm
    no_network_leaks.collect(dm.root)
    ids = dm("ps", "-aq", check=False).stdout.split()
    if ids:
        dm("rm", "-f", *ids, check=False)


def _inspect(dm, name) -> dict:
    return json.loads(dm("inspect", name).stdout)[0]


def _net(dm, name) -> dict:
    return _inspect(dm, name)["NetworkSettings"]


def _get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    last = None
    for _ in range(100):
        try:
            with opener.open(url, timeout=5) as r:
                return r.read().decode()
        except OSError as e:  # not listening yet
            last = e
            time.sleep(0.05)
    raise AssertionError(f"{url}: {last}")


def _serve(dm, image, name, *args):
    dm("run", "-d", "--name", name, *args, image, "sh", "-c", SERVE.format(name=name))


def test_two_containers_talk_by_ip_and_by_name(dmn, busybox_ref):
    _serve(dmn, busybox_ref, "web")
    ip = _net(dmn, "web")["IPAddress"]
    by_ip = dmn("run", "--rm", busybox_ref, "sh", "-c", FETCH.format(url=f"http://{ip}/"))
    assert by_ip.stdout == "hello-from-web\n"
    by_name = dmn("run", "--rm", busybox_ref, "sh", "-c", FETCH.format(url="http://web/"))
    assert by_name.stdout == "hello-from-web\n"


def test_stack_containers_reached_by_service_name_within_their_stack(dmn, busybox_ref):
    """Service names are scoped to a stack, as Compose scopes them to a project: two stacks
    that both have an `api` each reach their own."""
    for stack in ("shop", "blog"):
        _serve(dmn, busybox_ref, f"{stack}-api", "--label", f"io.docker-mini.stack={stack}",
               "--label", "io.docker-mini.service=api")
    for stack in ("shop", "blog"):
        out = dmn("run", "--rm", "--label", f"io.docker-mini.stack={stack}",
                  "--label", "io.docker-mini.service=client", busybox_ref,
                  "sh", "-c", FETCH.format(url="http://api/"))
        assert out.stdout == f"hello-from-{stack}-api\n"
    hosts = dmn("run", "--rm", busybox_ref, "cat", "/etc/hosts").stdout
    assert " api" not in hosts and "shop-api" in hosts        # outside a stack: container names only


def test_peers_hosts_kept_current(dmn, busybox_ref):
    dmn("run", "-d", "--name", "a", busybox_ref, "sleep", "1000")
    dmn("run", "-d", "--name", "b", busybox_ref, "sleep", "1000")
    ip_b = _net(dmn, "b")["IPAddress"]
    hosts = dmn("run", "--rm", "--name", "c", busybox_ref, "cat", "/etc/hosts").stdout
    assert any(line.split()[:1] == [ip_b] and "b" in line.split()[1:] for line in hosts.splitlines())
    # a's own /etc/hosts (bind-mounted, rewritten in place) learns about b and forgets it at stop
    hosts_a = dmn.root / "overlay-containers" / _inspect(dmn, "a")["Id"] / "hosts"
    assert ip_b in hosts_a.read_text()
    dmn("stop", "-t", "1", "b")
    assert ip_b not in hosts_a.read_text()


def test_host_reaches_container_by_ip_and_published_port(dmn, busybox_ref):
    port = free_port()
    _serve(dmn, busybox_ref, "web", "-p", f"{port}:80")
    s = _net(dmn, "web")
    assert _get(f"http://{s['IPAddress']}/") == "hello-from-web\n"
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-web\n"
    assert s["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}


def test_publish_without_host_port_picks_one(dmn, busybox_ref):
    _serve(dmn, busybox_ref, "web", "-p", "80")
    binding = _net(dmn, "web")["Ports"]["80/tcp"][0]
    assert binding["HostIp"] == "0.0.0.0" and int(binding["HostPort"]) > 0
    assert _get(f"http://127.0.0.1:{binding['HostPort']}/") == "hello-from-web\n"


def test_port_already_published_refused(dmn, busybox_ref):
    port = free_port()
    dmn("create", "--name", "one", "-p", f"{port}:80", busybox_ref, "true")
    p = dmn("create", "--name", "two", "-p", f"127.0.0.1:{port}:81", busybox_ref, "true", check=False)
    assert p.returncode != 0
    assert f"port 127.0.0.1:{port}/tcp is already published by container 'one'" in p.stderr
    assert "two" not in dmn("ps", "-a").stdout


def test_static_ip_and_mac_seen_inside_and_kept_across_stop_start(dmn, busybox_ref, test_network):
    subnet = ipaddress.IPv4Network(test_network["bridge-subnet"])
    ip, mac = str(subnet.network_address + 77), "02:00:00:aa:bb:cc"
    out = dmn("run", "--rm", "--ip", ip, "--mac-address", mac, busybox_ref, "ip", "addr", "show", "eth0").stdout
    assert f"link/ether {mac}" in out
    assert f"inet {ip}/{subnet.prefixlen}" in out

    dmn("run", "-d", "--name", "keep", busybox_ref, "sleep", "1000")
    first = _net(dmn, "keep")
    assert first["MacAddress"] == ipam.mac_for_ip(first["IPAddress"])
    dmn("stop", "-t", "1", "keep")
    dmn("run", "-d", "--name", "other", busybox_ref, "sleep", "1000")  # may not take keep's lease
    dmn("start", "keep")
    again = _net(dmn, "keep")
    assert (again["IPAddress"], again["MacAddress"]) == (first["IPAddress"], first["MacAddress"])
    inside = subprocess.run(["nsenter", f"--net={again['SandboxKey']}", "ip", "-j", "addr", "show", "eth0"],
                            capture_output=True, text=True, check=True).stdout
    eth0 = json.loads(inside)[0]
    assert eth0["address"] == first["MacAddress"]
    assert [a["local"] for a in eth0["addr_info"] if a["family"] == "inet"] == [first["IPAddress"]]


def test_duplicate_ip_and_mac_refused_before_anything_is_created(dmn, busybox_ref, test_network):
    subnet = ipaddress.IPv4Network(test_network["bridge-subnet"])
    ip = str(subnet.network_address + 9)
    dmn("create", "--name", "first", "--ip", ip, "--mac-address", "02:00:00:00:00:09", busybox_ref, "true")
    dup_ip = dmn("create", "--name", "dupip", "--ip", ip, busybox_ref, "true", check=False)
    assert dup_ip.returncode != 0 and f"--ip {ip}: address already used by container 'first'" in dup_ip.stderr
    dup_mac = dmn("create", "--name", "dupmac", "--mac-address", "02:00:00:00:00:09", busybox_ref, "true",
                  check=False)
    assert dup_mac.returncode != 0 and "already used by container 'first'" in dup_mac.stderr
    bad = dmn("create", "--name", "bad", "--mac-address", "01:00:5e:00:00:01", busybox_ref, "true", check=False)
    assert bad.returncode != 0 and "multicast" in bad.stderr
    out = dmn("create", "--name", "out", "--ip", "192.0.2.77", busybox_ref, "true", check=False)
    assert out.returncode != 0 and "outside the bridge subnet" in out.stderr
    names = dmn("ps", "-a").stdout
    assert all(n not in names for n in ("dupip", "dupmac", "bad", "out"))
    assert len(os.listdir(dmn.root / "overlay-containers")) == 1


def test_nothing_left_after_rm_and_prune_removes_bridge(dmn, busybox_ref, test_network):
    bridge = test_network["bridge-name"]
    dmn("run", "-d", "--name", "gone", busybox_ref, "sleep", "1000")
    cid = _inspect(dmn, "gone")["Id"]
    assert netadapter.link_exists(netnames.host_veth_name(cid))
    ip = _net(dmn, "gone")["IPAddress"]
    containers = json.loads(dmn("network", "inspect", "bridge").stdout)[0]["Containers"]
    assert containers[cid]["Name"] == "gone" and containers[cid]["IPv4Address"].startswith(f"{ip}/")
    assert "in use; nothing removed" in dmn("network", "prune", "-f").stdout
    assert netadapter.link_exists(bridge)
    dmn("rm", "-f", "gone")
    assert not netadapter.link_exists(netnames.host_veth_name(cid))
    assert not netadapter.netns_exists(netnames.netns_name(cid))
    assert not (dmn.root / "network" / "endpoints" / f"{cid}.json").exists()
    assert netadapter.link_exists(bridge)           # like Docker, the bridge stays
    assert json.loads(dmn("network", "inspect", "bridge").stdout)[0]["Containers"] == {}
    dmn("network", "prune", "-f")
    assert not netadapter.link_exists(bridge)
    assert netadapter.nft_table_text("ip", nftables.table_name(bridge)) is None


def test_none_mode_has_only_loopback(dmn, busybox_ref):
    out = dmn("run", "--rm", "--network", "none", busybox_ref, "ip", "-o", "link").stdout
    names = [line.split(":")[1].strip() for line in out.splitlines()]
    assert names == ["lo"]


def test_host_mode_sees_the_hosts_interfaces(dmn, busybox_ref):
    before = set(netadapter.list_links())
    out = dmn("run", "--rm", "--network", "host", busybox_ref, "ip", "-o", "link").stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    # other test sessions add and remove links meanwhile: judge those there all along
    stable = before & set(netadapter.list_links())
    assert "eth0" in stable and stable <= names


def test_container_mode_shares_the_network_namespace(dmn, busybox_ref):
    _serve(dmn, busybox_ref, "web")
    ip = _net(dmn, "web")["IPAddress"]
    out = dmn("run", "--rm", "--network", "container:web", busybox_ref,
              "sh", "-c", "(" + FETCH.format(url="http://127.0.0.1/") + ") && ip -o addr show eth0").stdout
    assert out.startswith("hello-from-web\n")
    assert f"inet {ip}/" in out
