"""core.netmode and core.netnames: --network modes, and the host names of netns and veths."""

from __future__ import annotations

import pytest

from reconciler.core import netmode, netnames, nftables
from reconciler.core.errors import InvalidArgument


@pytest.mark.parametrize("text,mode", [
    (None, "bridge"), ("bridge", "bridge"), ("default", "bridge"), ("none", "none"), ("host", "host"),
    ("container:web", "container:web"), ("mynet", "mynet"), ("front.end_1", "front.end_1"),
])
def test_network_modes(text, mode):
    assert str(netmode.parse_network_mode(text)) == mode


def test_a_user_network_is_a_bridge_mode():
    mode = netmode.parse_network_mode("backend")
    assert (mode.kind, mode.network) == ("bridge", "backend")


@pytest.mark.parametrize("name", ["bridge", "host", "none", "default", "-x", "a b", "x" * 64, ""])
def test_network_names_refused_for_create(name):
    with pytest.raises(InvalidArgument):
        netmode.check_network_name(name)


@pytest.mark.parametrize("text", ["container:", "-macvlan", "a b", "x/y"])
def test_bad_network_modes(text):
    with pytest.raises(InvalidArgument):
        netmode.parse_network_mode(text)


def test_host_names_fit_in_interface_names():
    cid = "0123456789abcdef" * 4
    assert netnames.host_veth_name(cid) == "vdm0123456789"
    assert len(netnames.host_veth_name(cid)) <= 15
    assert netnames.netns_name(cid) == "dm-0123456789abcdef0123456789abcdef"
    assert nftables.table_name("dmt42") == "dm-dmt42"
