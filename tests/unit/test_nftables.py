"""core.nftables: the text of our nftables table."""

from __future__ import annotations

import pytest

from reconciler.core import nftables
from reconciler.core.portmapping import PortMapping


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


def test_an_internal_network_neither_masquerades_nor_forwards_out():
    text = nftables.render_ruleset("dmi0", "10.5.0.0/24", [], internal=True)
    assert 'oifname != "dmi0" masquerade' not in text
    assert 'iifname "dmi0" oifname != "dmi0" drop' in text
    assert text.index('oifname != "dmi0" drop') < text.index('iifname "dmi0" accept')
    normal = nftables.render_ruleset("dmi0", "10.5.0.0/24", [])
    assert 'ip saddr 10.5.0.0/24 oifname != "dmi0" masquerade' in normal and "drop\n" in normal
