"""System tests drive real runc, conmon, overlayfs, cgroups, netlink, nftables and a registry."""

import os

import pytest

from reconciler.adapters import network as netadapter


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("docker-mini's system tests drive real runc, overlayfs and netlink: "
                                "run them as root (`make unit` runs the tests that need no root)")


@pytest.fixture(scope="session", autouse=True)
def _remove_test_bridge_at_session_end(test_network):
    """Whatever test used the run's bridge (any area's e2e tests), the run removes it and our
    nftables table at the end, unless a container of some test is still attached."""
    yield
    bridge = test_network["bridge-name"]
    if not netadapter.bridge_ports(bridge):
        netadapter.remove_bridge_and_table(bridge)
