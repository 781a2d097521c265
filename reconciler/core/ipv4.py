"""IPv4 addresses in dotted-quad spelling, read without the ipaddress module, which costs
~4 ms to import (with functools and collections) on commands that only check a default."""

from __future__ import annotations


def parse_ipv4(text: str) -> int | None:
    """The address as an int if text is one as ipaddress.IPv4Address accepts it (four decimal
    octets, no leading zeros), else None."""
    octets = text.split(".")
    if len(octets) != 4:
        return None
    value = 0
    for o in octets:
        if not (o.isascii() and o.isdigit()) or len(o) > 3 or o != str(int(o)) or int(o) > 255:
            return None
        value = value << 8 | int(o)
    return value
