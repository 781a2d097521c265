"""core.ipam: the bridge subnet, container addresses (IPAM) and MACs."""

from __future__ import annotations

import pytest

from reconciler.core import ipam
from reconciler.core.errors import ConflictError, InvalidArgument, NetworkError

SUBNET = ipam.Subnet.parse("10.77.0.0/16")
SMALL = ipam.Subnet.parse("10.9.9.0/30")


@pytest.mark.parametrize("text,expected", [
    ("10.77.0.2", "10.77.0.2"),
    (" 10.77.3.4 ", "10.77.3.4"),
    ("10.77.255.254", "10.77.255.254"),
])
def test_container_ip_accepted(text, expected):
    assert str(SUBNET.check_container_ip(text)) == expected


@pytest.mark.parametrize("text,why", [
    ("10.78.0.2", "outside the bridge subnet 10.77.0.0/16"),
    ("10.77.0.0", "network address"),
    ("10.77.0.1", "gateway"),
    ("10.77.255.255", "broadcast"),
    ("10.77.0", "not an IPv4 address"),
    ("fe80::1", "not an IPv4 address"),
    ("banana", "not an IPv4 address"),
])
def test_container_ip_refused(text, why):
    with pytest.raises(InvalidArgument, match=why):
        SUBNET.check_container_ip(text)


@pytest.mark.parametrize("taken,expected", [
    ([], "10.77.0.2"),
    (["10.77.0.2"], "10.77.0.3"),
    (["10.77.0.3"], "10.77.0.2"),                 # the lowest free one, holes are reused
    (["10.77.0.2", "10.77.0.3", "10.77.0.5"], "10.77.0.4"),
])
def test_allocate_next_free(taken, expected):
    assert str(SUBNET.allocate(taken)) == expected


def test_allocate_never_gives_gateway_or_broadcast_and_reports_exhaustion():
    assert str(SMALL.allocate([])) == "10.9.9.2"   # .0 network, .1 gateway, .3 broadcast
    with pytest.raises(NetworkError, match="no free address left in 10.9.9.0/30"):
        SMALL.allocate(["10.9.9.2"])


@pytest.mark.parametrize("text", ["10.77.0.1/16", "10.77.0.0/31", "nonsense"])
def test_bad_subnets(text):
    with pytest.raises(NetworkError):
        ipam.Subnet.parse(text)


@pytest.mark.parametrize("text,expected", [
    ("02:42:0a:4d:00:0a", "02:42:0a:4d:00:0a"),
    ("02:42:0A:4D:00:0A", "02:42:0a:4d:00:0a"),
    ("02-42-0a-4d-00-0a", "02:42:0a:4d:00:0a"),
    ("fe:ff:ff:ff:ff:ff", "fe:ff:ff:ff:ff:ff"),
])
def test_mac_accepted(text, expected):
    assert ipam.check_mac(text) == expected


@pytest.mark.parametrize("text,why", [
    ("01:00:5e:00:00:01", "multicast"),
    ("ff:ff:ff:ff:ff:ff", "multicast"),
    ("03:42:0a:4d:00:0a", "multicast"),
    ("00:00:00:00:00:00", "all-zero"),
    ("02:42:0a:4d:00", "not a MAC address"),
    ("02:42:0a:4d:00:0g", "not a MAC address"),
    ("02:42-0a:4d:00:0a", "not a MAC address"),
    ("0242.0a4d.000a", "not a MAC address"),
])
def test_mac_refused(text, why):
    with pytest.raises(InvalidArgument, match=why):
        ipam.check_mac(text)


@pytest.mark.parametrize("ip,mac", [
    ("10.77.0.10", "02:42:0a:4d:00:0a"),
    ("172.17.0.2", "02:42:ac:11:00:02"),
])
def test_mac_derived_from_ip_as_docker(ip, mac):
    assert ipam.mac_for_ip(ip) == mac


def test_overlap_ignores_default_route_and_reports_what_overlaps():
    host = [("route via eth0:", "0.0.0.0/0"), ("address on eth0:", "192.0.2.2/24"),
            ("route via wg0:", "10.0.0.0/8")]
    assert ipam.overlapping(SUBNET.network, host) == ["route via wg0: 10.0.0.0/8"]
    assert ipam.overlapping(ipam.Subnet.parse("172.31.0.0/16").network, host) == []


L = ipam.Lease


@pytest.mark.parametrize("leases,ip,mac,expected", [
    ([], None, None, ("10.77.0.2", "02:42:0a:4d:00:02")),
    ([L("a", "10.77.0.2", "02:42:0a:4d:00:02")], None, None, ("10.77.0.3", "02:42:0a:4d:00:03")),
    ([], "10.77.0.9", None, ("10.77.0.9", "02:42:0a:4d:00:09")),
    ([], None, "02:00:00:00:00:01", ("10.77.0.2", "02:00:00:00:00:01")),
    # a static MAC equal to .2's derived one: allocation skips .2 instead of colliding
    ([L("a", "10.77.0.7", "02:42:0a:4d:00:02")], None, None, ("10.77.0.3", "02:42:0a:4d:00:03")),
    # ...unless this container brings its own MAC
    ([L("a", "10.77.0.7", "02:42:0a:4d:00:02")], None, "02:00:00:00:00:01", ("10.77.0.2", "02:00:00:00:00:01")),
])
def test_choose_address(leases, ip, mac, expected):
    got = ipam.choose_address(SUBNET, leases, ip, mac)
    assert (str(got[0]), got[1]) == expected


@pytest.mark.parametrize("leases,ip,mac,message", [
    ([L("a", "10.77.0.9", "02:00:00:00:00:09")], "10.77.0.9", None, "address already used by container 'a'"),
    ([L("a", "10.77.0.9", "02:00:00:00:00:09")], None, "02:00:00:00:00:09", "already used by container 'a'"),
    ([L("a", "10.77.0.7", "02:42:0a:4d:00:02")], "10.77.0.2", None, "its MAC 02:42:0a:4d:00:02 is already used"),
])
def test_choose_address_conflicts(leases, ip, mac, message):
    with pytest.raises(ConflictError, match=message):
        ipam.choose_address(SUBNET, leases, ip, mac)


def test_pick_subnet_takes_the_first_free_one_of_the_pools():
    taken = [("network bridge:", "10.78.0.0/24"), ("route via eth0:", "10.78.1.128/25"), ("default", "0.0.0.0/0")]
    assert str(ipam.pick_subnet([("10.78.0.0/16", 24)], taken)) == "10.78.2.0/24"
    assert str(ipam.pick_subnet([("10.78.0.0/23", 24), ("192.168.0.0/20", 26)], taken)) == "192.168.0.0/26"
    with pytest.raises(NetworkError):
        ipam.pick_subnet([("10.78.0.0/23", 24)], taken)


def test_a_network_gateway_is_inside_and_not_handed_out():
    net = ipam.Subnet.parse("10.9.0.0/29", "10.9.0.6")
    assert str(net.gateway) == "10.9.0.6"
    assert str(net.allocate([])) == "10.9.0.1"
    with pytest.raises(NetworkError):       # .6 is the gateway, .7 the broadcast
        net.allocate(["10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"])
    with pytest.raises(InvalidArgument):
        ipam.check_gateway(net.network, "10.9.0.7")
    with pytest.raises(InvalidArgument):
        ipam.parse_network_subnet("10.9.0.0/31")
