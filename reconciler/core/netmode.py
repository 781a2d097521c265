"""A container's network mode, as --network and a spec's `network:` spell it."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.errors import InvalidArgument

MODES = ("bridge", "none", "host")  # plus "container:NAME"


@dataclass(frozen=True)
class NetworkMode:
    kind: str                       # "bridge" | "none" | "host" | "container"
    container: str | None = None    # the other container's name or id for kind == "container"

    def __str__(self) -> str:
        return f"container:{self.container}" if self.kind == "container" else self.kind


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
    raise InvalidArgument(f"--network {text!r}: unknown network mode",
                          hint="use bridge, none, host or container:NAME")
