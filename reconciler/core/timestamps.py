"""RFC 3339 times in UTC, as docker-mini writes them (records, logs, image metadata)."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(ns: int, *, digits: int = 9, utc: str = "Z") -> str:
    """Nanoseconds since the epoch as "2026-11-28T09:00:00.123456789Z": `digits` of the
    fraction (truncated), `utc` the zone as written ("Z", or "+00:00" as conmon writes logs)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    when = datetime.fromtimestamp(seconds, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}"[:digits + 1] + utc
