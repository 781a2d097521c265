"""The seed's demo with a real nginx (Debian's binary, see tests/fixtures/nginx.py), through the
CLI on the test run's own bridge: the host reaches it by its static IP and through a published
port on 127.0.0.1, its access log shows in `logs`, `stop` ends it gracefully with the image's
StopSignal, and `rm` leaves nothing. Traffic goes only to loopback and to the test containers."""

from __future__ import annotations

import ipaddress
import subprocess
import time

import pytest

from reconciler.adapters import network as netadapter
from reconciler.core import netnames, nftables
from tests.fixtures.containers import assert_nothing_left, inspect, wait_until
from tests.fixtures.nginx import NGINX_PAGE
from tests.fixtures.registry import free_port


@pytest.fixture
def dmx(dmc, no_network_leaks, root):
    """`dmc` plus the network leak check: every container is removed (rm -f) afterwards, then
    nothing of it may be left, neither under the root nor on the host's network."""
    yield dmc
    no_network_leaks.collect(root)
    ids = dmc("ps", "-aq", "--no-trunc", check=False).stdout.split()
    if ids:
        dmc("rm", "-f", *ids, check=False)
    assert_nothing_left(root, ids)


def _static_ip(test_network, offset: int) -> str:
    return str(ipaddress.IPv4Network(test_network["bridge-subnet"]).network_address + offset)


def curl(url: str, attempts: int = 200) -> tuple[str, str]:
    """(headers, body) of GET url with the host's curl; retried while nginx is not listening yet
    (curl exit 7: connection refused). Only loopback and test containers are ever given here."""
    proc = None
    for _ in range(attempts):
        proc = subprocess.run(["curl", "-s", "--noproxy", "*", "--max-time", "5", "-D", "-", url],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            headers, _, body = proc.stdout.partition("\n\n")  # text mode turned CRLF into LF
            return headers, body
        if proc.returncode != 7:
            break
        time.sleep(0.05)
    raise AssertionError(f"curl {url} exited {proc.returncode}: {proc.stderr}")


def _assert_nginx_page(url: str) -> None:
    headers, body = curl(url)
    assert headers.startswith("HTTP/1.1 200 OK"), headers
    assert "\nServer: nginx/" in headers, headers
    assert body == NGINX_PAGE


def _run_nginx(dm, image, name, *args) -> str:
    return dm("run", "-d", "--name", name, *args, image).stdout.strip()


def test_host_reaches_nginx_at_its_static_ip(dmx, nginx_image, test_network):
    ip = _static_ip(test_network, 80)
    _run_nginx(dmx, nginx_image, "web", "--ip", ip)
    info = inspect(dmx, "web")
    assert info["NetworkSettings"]["IPAddress"] == ip
    assert info["Config"]["Cmd"] == ["nginx", "-g", "daemon off;"]
    _assert_nginx_page(f"http://{ip}/")
    # the master runs as root, its worker as www-data from the image's /etc/passwd
    master = info["State"]["Pid"]
    with open(f"/proc/{master}/task/{master}/children") as f:
        [worker] = f.read().split()
    with open(f"/proc/{worker}/status") as f:
        uids = next(line.split()[1:] for line in f if line.startswith("Uid:"))
    assert uids == ["33"] * 4


def test_host_reaches_nginx_through_a_published_port(dmx, nginx_image):
    port = free_port()
    _run_nginx(dmx, nginx_image, "web", "-p", f"{port}:80")
    assert inspect(dmx, "web")["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    _assert_nginx_page(f"http://127.0.0.1:{port}/")


def test_logs_show_nginx_access_lines(dmx, nginx_image):
    port = free_port()
    _run_nginx(dmx, nginx_image, "web", "-p", f"{port}:80")
    ip = inspect(dmx, "web")["NetworkSettings"]["IPAddress"]
    curl(f"http://{ip}/?via=ip")
    curl(f"http://127.0.0.1:{port}/?via=port")

    def access_lines():
        lines = dmx("logs", "web").stdout.splitlines()
        hits = [ln for ln in lines if '"GET /?via=' in ln]
        return hits if len(hits) == 2 else None

    by_ip, by_port = wait_until(access_lines, what="two access log lines in `logs`")
    for line, via in ((by_ip, "ip"), (by_port, "port")):
        assert f'"GET /?via={via} HTTP/1.1" 200 {len(NGINX_PAGE)} "-" "curl/' in line, line


def test_stop_is_graceful_with_the_images_sigquit(dmx, nginx_image):
    _run_nginx(dmx, nginx_image, "web")
    info = inspect(dmx, "web")
    assert info["Config"]["StopSignal"] == "SIGQUIT"
    curl(f"http://{info['NetworkSettings']['IPAddress']}/")  # up and serving
    # a generous grace time: had nginx ignored the signal, the SIGKILL after it would give 137
    dmx("stop", "-t", "30", "web")
    state = inspect(dmx, "web")["State"]
    assert (state["Status"], state["Running"], state["ExitCode"], state["OOMKilled"]) == ("exited", False, 0, False)
    errors = dmx("logs", "web").stderr  # nginx's error log goes to stderr
    assert "signal 3 (SIGQUIT) received" in errors and "gracefully shutting down" in errors, errors


def test_rm_leaves_nothing(dmx, nginx_image, no_network_leaks, test_network):
    ip, port = _static_ip(test_network, 81), free_port()
    cid = _run_nginx(dmx, nginx_image, "web", "--ip", ip, "-p", f"{port}:80")
    no_network_leaks.add(cid)
    _assert_nginx_page(f"http://127.0.0.1:{port}/")
    table = nftables.table_name(test_network["bridge-name"])
    assert ip in netadapter.nft_table_text("ip", table)

    dmx("rm", "-f", "web")
    assert "web" not in dmx("ps", "-a").stdout
    assert_nothing_left(dmx.root, [cid])
    assert no_network_leaks.leftovers() == []
    assert not netadapter.link_exists(netnames.host_veth_name(cid))
    rules = netadapter.nft_table_text("ip", table) or ""
    assert ip not in rules and f"dport {port}" not in rules
    refused = subprocess.run(["curl", "-s", "--noproxy", "*", "--max-time", "5", f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 7, refused
