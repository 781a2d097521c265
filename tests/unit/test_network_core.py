"""core.ipam, portmapping, nftables, hostsfile, resolvconf, netmode, netnames: addresses, MACs, IPAM, port specs, the ruleset, hosts and resolv.conf."""

from __future__ import annotations

import pytest

from reconciler.core import hostsfile, ipam, netmode, netnames, nftables, portmapping, resolvconf
from reconciler.core.errors import ConflictError, InvalidArgument, NetworkError
from reconciler.core.portmapping import PortMapping

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


@pytest.mark.parametrize("spec,expected", [
    ("8080:80", [PortMapping("", 8080, 80, "tcp")]),
    ("8080:80/udp", [PortMapping("", 8080, 80, "udp")]),
    ("127.0.0.1:8080:80", [PortMapping("127.0.0.1", 8080, 80, "tcp")]),
    ("0.0.0.0:8080:80/TCP", [PortMapping("", 8080, 80, "tcp")]),
    (":8080:80", [PortMapping("", 8080, 80, "tcp")]),
    ("8000-8001:9000-9001", [PortMapping("", 8000, 9000), PortMapping("", 8001, 9001)]),
    ("80", [PortMapping("", 0, 80)]),                       # host port chosen by the engine
    ("53/udp", [PortMapping("", 0, 53, "udp")]),
    ("127.0.0.1::80", [PortMapping("127.0.0.1", 0, 80)]),
    ("80-81", [PortMapping("", 0, 80), PortMapping("", 0, 81)]),
])
def test_port_specs(spec, expected):
    assert portmapping.parse_port_spec(spec) == expected


@pytest.mark.parametrize("spec,why", [
    ("x", "not a port number"),
    ("8080:80/sctp", "protocol must be tcp or udp"),
    ("0:80", "between 1 and 65535"),
    ("8080:65536", "between 1 and 65535"),
    ("http:80", "not a port number"),
    ("1.2.3:8080:80", "not an IPv4 host address"),
    ("8001-8000:80-81", "runs backwards"),
    ("8000-8002:80", "container port range of the same size"),
    ("8000-8002:80-81", "differ in size"),
    ("a:b:c:d", "expected"),
    ("[::1]:80:80", "IPv6"),
])
def test_bad_port_specs(spec, why):
    with pytest.raises(InvalidArgument, match=why):
        portmapping.parse_port_spec(spec)


def test_same_host_port_twice_in_one_container_refused():
    with pytest.raises(InvalidArgument, match="given twice"):
        portmapping.parse_ports(["8080:80", "8080:81"])
    # tcp and udp on one port, or two specific host addresses, do not clash
    assert len(portmapping.parse_ports(["8080:80", "8080:80/udp"])) == 2
    assert len(portmapping.parse_ports(["127.0.0.1:8080:80", "127.0.0.2:8080:80"])) == 2


@pytest.mark.parametrize("wanted,theirs,clash", [
    ("8080:80", "8080:81", True),
    ("127.0.0.1:8080:80", "8080:80", True),      # the wildcard covers every address
    ("8080:80", "127.0.0.1:8080:80", True),
    ("127.0.0.1:8080:80", "127.0.0.2:8080:80", False),
    ("8080:80/udp", "8080:80/tcp", False),
    ("8081:80", "8080:80", False),
])
def test_port_conflicts_between_containers(wanted, theirs, clash):
    check = lambda: portmapping.check_port_conflicts(portmapping.parse_port_spec(wanted),  # noqa: E731
                                                 {"web": portmapping.parse_port_spec(theirs)})
    if clash:
        with pytest.raises(ConflictError, match="already published by container 'web'"):
            check()
    else:
        check()


@pytest.mark.parametrize("text,mode", [
    (None, "bridge"), ("bridge", "bridge"), ("default", "bridge"), ("none", "none"), ("host", "host"),
    ("container:web", "container:web"),
])
def test_network_modes(text, mode):
    assert str(netmode.parse_network_mode(text)) == mode


@pytest.mark.parametrize("text", ["container:", "macvlan", "Bridge"])
def test_bad_network_modes(text):
    with pytest.raises(InvalidArgument):
        netmode.parse_network_mode(text)


def test_overlap_ignores_default_route_and_reports_what_overlaps():
    host = [("route via eth0:", "0.0.0.0/0"), ("address on eth0:", "192.0.2.2/24"),
            ("route via wg0:", "10.0.0.0/8")]
    assert ipam.overlapping(SUBNET.network, host) == ["route via wg0: 10.0.0.0/8"]
    assert ipam.overlapping(ipam.Subnet.parse("172.31.0.0/16").network, host) == []


def test_host_names_fit_in_interface_names():
    cid = "0123456789abcdef" * 4
    assert netnames.host_veth_name(cid) == "vdm0123456789"
    assert len(netnames.host_veth_name(cid)) <= 15
    assert netnames.netns_name(cid) == "dm-0123456789abcdef0123456789abcdef"
    assert nftables.table_name("dmt42") == "dm-dmt42"


def test_ruleset_replaces_only_our_table_and_dnats_both_paths():
    eps = [nftables.Endpoint("a" * 64, "10.77.0.2", (PortMapping("", 8080, 80),)),
           nftables.Endpoint("b" * 64, "10.77.0.3", (PortMapping("127.0.0.1", 5353, 53, "udp"),))]
    text = nftables.render_ruleset("dmt1", "10.77.0.0/16", eps)
    lines = [line.strip() for line in text.splitlines()]
    # create-then-delete-then-define: one transaction that works whether or not the table exists
    assert lines[:3] == ["table ip dm-dmt1", "delete table ip dm-dmt1", "table ip dm-dmt1 {"]
    assert all(line.startswith(("table ip dm-dmt1", "delete table ip dm-dmt1")) for line in lines
               if line.startswith(("table", "delete", "flush", "add")))
    tcp = "fib daddr type local tcp dport 8080 dnat to 10.77.0.2:80"
    udp = "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.77.0.3:53"
    assert _chain(text, "prerouting").count(tcp) == 1 and _chain(text, "output").count(tcp) == 1
    assert _chain(text, "output").count(udp) == 1
    assert 'ip saddr 10.77.0.0/16 oifname != "dmt1" masquerade' in lines
    assert 'ip saddr 127.0.0.0/8 oifname "dmt1" masquerade' in lines


def _chain(text: str, name: str) -> list[str]:
    """The rules of one chain of the rendered table, stripped, without the header line."""
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index(f"chain {name} {{")
    end = lines.index("}", start)
    return lines[start + 2:end]


@pytest.mark.parametrize("host_ip", ["127.0.0.1", "127.0.0.53"])
def test_port_published_on_loopback_is_not_dnated_for_other_hosts(host_ip):
    # A neighbour can send dst=127.0.0.1 to our NIC; only the host's own connections (output)
    # may be DNATed to a loopback-bound port.
    eps = [nftables.Endpoint("a" * 64, "10.77.0.2", (PortMapping(host_ip, 8080, 80),
                                                     PortMapping("", 8443, 443),
                                                     PortMapping("192.0.2.7", 8000, 8000)))]
    text = nftables.render_ruleset("dmt1", "10.77.0.0/16", eps)
    assert _chain(text, "prerouting") == [
        "fib daddr type local tcp dport 8443 dnat to 10.77.0.2:443",
        "ip daddr 192.0.2.7 tcp dport 8000 dnat to 10.77.0.2:8000",
    ]
    assert f"ip daddr {host_ip} tcp dport 8080 dnat to 10.77.0.2:80" in _chain(text, "output")
    assert len(_chain(text, "output")) == 3


def test_forward_passes_only_replies_published_ports_and_own_traffic_into_the_bridge():
    text = nftables.render_ruleset("dmt1", "10.77.0.0/16", [])
    assert _chain(text, "forward") == [
        'iifname "dmt1" accept',                                   # container to anywhere
        'oifname "dmt1" ct state established,related accept',      # replies
        'oifname "dmt1" ct status dnat accept',                    # published ports
        'oifname "dmt1" drop',                                     # anything else into the bridge
    ]
    # the host's own forwarding is not ours to decide
    assert "type filter hook forward priority filter; policy accept;" in text


def test_ruleset_without_containers_still_masquerades():
    text = nftables.render_ruleset("dmt1", "10.77.0.0/16", [])
    assert "dnat to" not in text and "masquerade" in text


def test_hosts_lists_self_and_peers_sorted_by_address():
    own = hostsfile.HostEntry("10.77.0.3", ("abc123", "web", "web", "svc"))
    peers = [hostsfile.HostEntry("10.77.0.10", ("db",)), hostsfile.HostEntry("10.77.0.2", ("cache", "redis"))]
    text = hostsfile.render_hosts(own, peers)
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[-3:] == ["10.77.0.3\tabc123 web svc", "10.77.0.2\tcache redis", "10.77.0.10\tdb"]
    assert text.endswith("\n")


def test_hosts_without_address_maps_hostname_to_loopback():
    assert hostsfile.render_hosts(None, hostname="box").splitlines()[-1] == "127.0.0.1\tbox"


@pytest.mark.parametrize("host,kept,fallback", [
    ("nameserver 10.0.0.53\nsearch example.org\n", ["nameserver 10.0.0.53", "search example.org"], False),
    ("nameserver 127.0.0.53\noptions edns0\n", ["options edns0"], True),
    ("nameserver 127.0.0.1\nnameserver 192.0.2.53\n", ["nameserver 192.0.2.53"], False),
    ("nameserver ::1\nnameserver fe80::1%eth0\n", [], True),
    ("nameserver 2001:db8::53\nnameserver 10.1.1.1\n", ["nameserver 10.1.1.1"], False),   # no IPv6 route
    ("nameserver 010.0.0.1\nnameserver bogus\n", [], True),                             # malformed
    ("nameserver 127.53.0.1\n", [], True),                                                # all of 127/8
    ("", [], True),
])
def test_resolv_conf_drops_loopback_nameservers(host, kept, fallback):
    out = resolvconf.render_resolv_conf(host).splitlines()
    for line in kept:
        assert line in out
    assert not any(line.startswith("nameserver 127.") or line == "nameserver ::1" for line in out)
    assert ("nameserver 8.8.8.8" in out) == fallback


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


def test_ephemeral_host_ports_skip_published_ones():
    wanted = portmapping.parse_ports(["80", "127.0.0.1::81", "8080:82", "53/udp"])
    published = [PortMapping("", 40000, 1), PortMapping("127.0.0.1", 40002, 1, "udp")]
    pool = iter(range(40000, 40010))
    got = portmapping.with_host_ports(wanted, lambda m: pool, published)
    assert got == [PortMapping("", 40001, 80), PortMapping("127.0.0.1", 40002, 81),
                   PortMapping("", 8080, 82), PortMapping("", 40003, 53, "udp")]
    with pytest.raises(NetworkError, match="no free host port left to publish 80/tcp"):
        portmapping.with_host_ports(portmapping.parse_ports(["80"]), lambda m: [40000], published)
