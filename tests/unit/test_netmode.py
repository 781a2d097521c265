"""core.netmode and core.netnames: --network modes, and the host names of netns and veths."""

from __future__ import annotations

import pytest

from reconciler.core import netmode, netnames, nftables
from reconciler.core.errors import InvalidArgument


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


def test_host_names_fit_in_interface_names():
    cid = "0123456789abcdef" * 4
    assert netnames.host_veth_name(cid) == "vdm0123456789"
    assert len(netnames.host_veth_name(cid)) <= 15
    assert netnames.netns_name(cid) == "dm-0123456789abcdef0123456789abcdef"
    assert nftables.table_name("dmt42") == "dm-dmt42"
