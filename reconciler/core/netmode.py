"""A container's network mode, as --network and a spec's `network:` spell it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.core.errors import InvalidArgument

MODES = ("bridge", "none", "host")  # plus "container:NAME" and a user-defined network's name
DEFAULT_NETWORK = "bridge"          # the default network's name (Docker's), as `network ls` shows it
RESERVED_NAMES = ("bridge", "none", "host", "default")
NETWORK_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")


@dataclass(frozen=True)
class NetworkMode:
    kind: str                       # "bridge" | "none" | "host" | "container"
    container: str | None = None    # the other container's name or id for kind == "container"
    network: str = DEFAULT_NETWORK  # kind == "bridge": the default network or a user-defined one

    def __str__(self) -> str:
        if self.kind == "container":
            return f"container:{self.container}"
        return self.network if self.kind == "bridge" else self.kind


def parse_network_mode(text: str | None) -> NetworkMode:
    text = (text or "bridge").strip()
    if text == "default":
        text = "bridge"
    if text in MODES:
        return NetworkMode(text)
    if text.startswith("container:"):
        other = text.split(":", 1)[1]
        if not other:
            raise InvalidArgument("--network container: needs a container name or id (container:NAME)")
        return NetworkMode("container", other)
    if NETWORK_NAME.fullmatch(text):
        return NetworkMode("bridge", network=text)      # a user-defined network: prepare checks it exists
    raise InvalidArgument(f"--network {text!r}: not a network mode or network name",
                          hint="use bridge, none, host, container:NAME or the name of a network "
                               "(docker-mini network ls)")


def check_network_name(name: str) -> str:
    """The name of a network to create."""
    if name in RESERVED_NAMES:
        raise InvalidArgument(f"network name {name!r} is reserved", hint="pick another name")
    if not NETWORK_NAME.fullmatch(name):
        raise InvalidArgument(f"network name {name!r}: use letters, digits, '_', '.' and '-' "
                              "(starting with a letter or digit, at most 63 characters)")
    return name
