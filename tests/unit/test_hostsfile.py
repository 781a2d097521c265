"""core.hostsfile and core.resolvconf: a container's /etc/hosts and /etc/resolv.conf."""

from __future__ import annotations

import pytest

from reconciler.core import hostsfile, resolvconf
from reconciler.core.errors import InvalidArgument


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


def test_add_host_and_dns_overrides():
    assert hostsfile.parse_add_host("db:10.0.0.5") == ("db", "10.0.0.5")
    assert hostsfile.parse_add_host("v6=::1") == ("v6", "::1")
    for bad in ("db", "db:", ":1.2.3.4", "db:notanip", "a b:1.2.3.4"):
        with pytest.raises(InvalidArgument):
            hostsfile.parse_add_host(bad)
    assert hostsfile.with_extra_hosts("127.0.0.1\tlocalhost\n", [("db", "10.0.0.5")]) == \
        "127.0.0.1\tlocalhost\n10.0.0.5\tdb\n"
    text = resolvconf.with_overrides("search a\nnameserver 1.1.1.1\noptions ndots:2\n", ["9.9.9.9"], ["."])
    assert text == "options ndots:2\nnameserver 9.9.9.9\n"
    with pytest.raises(InvalidArgument):
        resolvconf.check_dns(["nope"])
