"""Sizes as Docker writes them: 512, 64k, 128m, 1g (binary units, case-insensitive, optional b)."""

from __future__ import annotations

from reconciler.core.errors import InvalidArgument

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$"


def parse_size(value: str | int, what: str = "size") -> int:
    """Return bytes for '128m'-style sizes; raise InvalidArgument naming `what` otherwise."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{what}: {value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise InvalidArgument(f"{what}: {value} is negative")
        return value
    text = str(value)
    number, unit = text, ""
    if text[-1:].lower() in ("b", "k", "m", "g", "t"):
        number, unit = text[:-1], text[-1].lower()
    if number.isascii() and number.isdigit():      # "10m", "512": no regular expression to compile
        return int(float(number) * _UNITS[unit])
    import re       # only for the rarer spellings ("1.5g", "64 MiB"): it costs ~6 ms to import
    m = re.match(_SIZE, text, re.IGNORECASE)
    if not m:
        raise InvalidArgument(f"{what}: {value!r} is not a size (use a number with an optional "
                              f"unit b, k, m, g: e.g. 128m)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def human_size(n: int) -> str:
    """Docker's `images` SIZE style: decimal units, three significant digits."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n}B"
