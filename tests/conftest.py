"""Fixtures shared by unit and system tests live in tests/fixtures/ and are loaded as plugins.

Unit tests (tests/unit) need no root, network or system packages; system tests (tests/system)
drive real runc, overlayfs, netlink and a registry, and check for root in their own conftest.
"""

pytest_plugins = [
    "tests.fixtures.cli",
    "tests.fixtures.registry",
    "tests.fixtures.network",
    "tests.fixtures.containers",
    "tests.fixtures.nginx",
    "tests.fixtures.images",
    "tests.fixtures.stacks",
]
