"""Sizes as Docker writes them: 512, 64k, 128m, 1g (binary units, case-insensitive, optional b)."""

from __future__ import annotations

import re

from reconciler.core.errors import InvalidArgument

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE | re.ASCII)


def parse_size(value: str | int, what: str = "size") -> int:
    """Return bytes for '128m'-style sizes; raise InvalidArgument naming `what` otherwise."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{what}: {value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise InvalidArgument(f"{what}: {value} is negative")
        return value
    m = _SIZE.fullmatch(str(value))
    if not m:
        raise InvalidArgument(f"{what}: {value!r} is not a size (use a number with an optional "
                              f"unit b, k, m, g: e.g. 128m)")
    number, unit = m.group(1), _UNITS[m.group(2).lower()]
    return int(float(number) * unit) if "." in number else int(number) * unit


def human_size(n: int) -> str:
    """Docker's `images` SIZE style: decimal units, three significant digits."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n}B"
