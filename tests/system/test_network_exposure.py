"""What a neighbour host sees of our containers, on the real kernel.

The neighbour is a network namespace of this machine joined to the host by a veth on a /30 of
its own (from 198.18.0.0/15, the benchmarking range), with a route for the container subnet via
the host, as a machine on the same link could have. Traffic stays between our own namespaces.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys

import pytest

from reconciler.adapters import network as netadapter
from tests.fixtures.registry import free_port

NEIGHBOUR_NS = f"dmnb-{os.getpid()}"
HOST_END = f"dmnbh{os.getpid() % 100000}"
PEER_END = f"dmnbp{os.getpid() % 100000}"


def _ip(*argv: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


def _free_link_net() -> ipaddress.IPv4Network:
    used = [ipaddress.IPv4Network(cidr, strict=False) for _, cidr in netadapter.host_networks()]
    for net in ipaddress.IPv4Network("198.18.0.0/15").subnets(new_prefix=30):
        if not any(net.overlaps(u) for u in used):
            return net
    pytest.skip("no free /30 in 198.18.0.0/15 for the neighbour link")


@pytest.fixture
def neighbour(test_network):
    """(host address on the link, neighbour address) with the neighbour routing the container
    subnet via the host. Removed afterwards, even on failure."""
    net = _free_link_net()
    host_addr, peer_addr = (str(a) for a in net.hosts())
    try:
        _ip("netns", "add", NEIGHBOUR_NS)
        _ip("link", "add", HOST_END, "type", "veth", "peer", "name", PEER_END, "netns", NEIGHBOUR_NS)
        _ip("addr", "add", f"{host_addr}/30", "dev", HOST_END)
        _ip("link", "set", HOST_END, "up")
        _ip("addr", "add", f"{peer_addr}/30", "dev", PEER_END, ns=NEIGHBOUR_NS)
        _ip("link", "set", PEER_END, "up", ns=NEIGHBOUR_NS)
        _ip("route", "add", test_network["bridge-subnet"], "via", host_addr, ns=NEIGHBOUR_NS)
        # The neighbour's lo stays down, so it has no local 127/8 route: 127.0.0.1 can be sent
        # to the host over the link, as a machine on the same segment could.
        _ip("route", "add", "127.0.0.1/32", "via", host_addr, ns=NEIGHBOUR_NS)
        subprocess.run(["ip", "netns", "exec", NEIGHBOUR_NS, "sysctl", "-qw",
                        f"net.ipv4.conf.{PEER_END}.route_localnet=1"], check=True)
        yield host_addr, peer_addr
    finally:
        # deleting the namespace takes the veth pair with it
        subprocess.run(["ip", "link", "del", HOST_END], capture_output=True)
        subprocess.run(["ip", "netns", "del", NEIGHBOUR_NS], capture_output=True)
    assert not netadapter.link_exists(HOST_END)
    assert not netadapter.netns_exists(NEIGHBOUR_NS)


GET = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
except OSError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
sys.stdout.write(data.decode().split("\\r\\n\\r\\n", 1)[1])
"""


def _get(addr: str, port: int, ns: str | None = NEIGHBOUR_NS) -> str | None:
    """The body fetched from http://addr:port/ (by the neighbour, or the host with ns=None), or
    None when nothing answers. A dropped SYN only shows as a timeout, hence the short one."""
    cmd = [sys.executable, "-c", GET, addr, str(port)]
    proc = subprocess.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd,
                          capture_output=True, text=True, timeout=30)
    return proc.stdout if proc.returncode == 0 else None


def test_neighbour_reaches_only_published_ports(fake_containers, neighbour, tmp_path):
    host_addr, _ = neighbour
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "index.html").write_text("hello from the container\n")
    public, local = free_port(), free_port()
    web = fake_containers.create("web", ports=[f"{public}:80", f"127.0.0.1:{local}:81"])
    fake_containers.start(web)
    for port in (80, 81, 8081):          # 8081 is published nowhere
        fake_containers.httpd(web, docroot, port=port)
    ip = web["network"]["ip"]

    # published on 0.0.0.0: reachable through the host's address on the neighbour's link
    assert _get(host_addr, public) == "hello from the container\n"
    # routing the container subnet via the host gives nothing that is not published
    assert _get(ip, 8081) is None
    assert _get(ip, 80) is None
    # published on 127.0.0.1 only: not reachable by sending dst=127.0.0.1 to the host's NIC
    assert _get("127.0.0.1", local) is None
    # while the host itself still reaches all of it
    assert _get("127.0.0.1", local, ns=None) == "hello from the container\n"
    assert _get(ip, 8081, ns=None) == "hello from the container\n"
