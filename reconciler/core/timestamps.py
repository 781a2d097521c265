"""RFC 3339 times in UTC, as docker-mini writes them (records, logs, image metadata)."""

from __future__ import annotations

import time


def rfc3339(ns: int, *, digits: int = 9, utc: str = "Z") -> str:
    """Nanoseconds since the epoch as "2026-11-28T09:00:00.123456789Z": `digits` of the
    fraction (truncated), `utc` the zone as written ("Z", or "+00:00" as conmon writes logs)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{fraction:09d}"[:digits + 1] + utc)
