"""Names on the host of a container's network namespace and host-side veth.

They are derived from the container id so a later command can find what a killed one left
behind. Interface names are at most 15 characters.
"""

from __future__ import annotations

NETNS_PREFIX = "dm-"
VETH_PREFIX = "vdm"


def netns_name(container_id: str) -> str:
    return NETNS_PREFIX + container_id[:32]


def host_veth_name(container_id: str) -> str:
    return VETH_PREFIX + container_id[:10]
