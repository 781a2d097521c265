"""core.portmapping: -p specs, host-port choice and conflicts between containers."""

from __future__ import annotations

import pytest

from reconciler.core import portmapping
from reconciler.core.errors import ConflictError, InvalidArgument, NetworkError
from reconciler.core.portmapping import PortMapping


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


def test_ephemeral_host_ports_skip_published_ones():
    wanted = portmapping.parse_ports(["80", "127.0.0.1::81", "8080:82", "53/udp"])
    published = [PortMapping("", 40000, 1), PortMapping("127.0.0.1", 40002, 1, "udp")]
    pool = iter(range(40000, 40010))
    got = portmapping.with_host_ports(wanted, lambda m: pool, published)
    assert got == [PortMapping("", 40001, 80), PortMapping("127.0.0.1", 40002, 81),
                   PortMapping("", 8080, 82), PortMapping("", 40003, 53, "udp")]
    with pytest.raises(NetworkError, match="no free host port left to publish 80/tcp"):
        portmapping.with_host_ports(portmapping.parse_ports(["80"]), lambda m: [40000], published)


def test_publish_all_adds_the_exposed_ports_not_yet_published():
    from reconciler.core.portmapping import with_exposed
    assert with_exposed(["8080:80"], {"80/tcp": {}, "53/udp": {}, "9/sctp": {}, "x": {}}) == ["8080:80", "53/udp"]
    assert with_exposed([], None) == []
