"""What the listing commands (ps, images, inspect) share: Docker's durations, the times
docker-mini writes, and --format templates."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from reconciler.core import errors


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if seconds < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def parse_time(text: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 time as docker-mini writes them (UTC when no offset is
    given), None for Go's zero time, an empty or an unreadable one."""
    if not text or text.startswith("0001-"):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def render_template(template: str, obj) -> str:
    """A small subset of Go templates: {{.Field}}, {{.A.B}}, {{json .X}}, {{json .}}, \\t and \\n."""

    def lookup(path: str):
        value = obj
        for part in [p for p in path.split(".") if p]:
            if isinstance(value, dict):
                value = value.get(part)
            else:
                value = getattr(value, part, None)
        return value

    def sub(m):
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return _compact_json(lookup(expr[5:].strip()))
        if expr.startswith("."):
            value = lookup(expr)
            if isinstance(value, bool):
                return "true" if value else "false"
            if value is None:
                return "<no value>"
            if isinstance(value, (dict, list)):
                return _compact_json(value)
            return str(value)
        raise errors.InvalidArgument(f"unsupported template expression {{{{{expr}}}}}")

    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return re.sub(r"\{\{(.*?)\}\}", sub, text)


def _compact_json(value) -> str:
    """Go's json.Marshal spacing, which `{{json .X}}` prints."""
    return json.dumps(value, separators=(",", ":"))
