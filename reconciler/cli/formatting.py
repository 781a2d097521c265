"""What the listing commands (ps, images, inspect) share: Docker's durations, the times
docker-mini writes, and --format templates."""

from __future__ import annotations

import time

from reconciler.core import errors, jsontext


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
    if not text or text.startswith("0001-"):
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    frac = frac.split("+")[0]
    t = _epoch_of_plain(main)
    if t is None:
        import calendar
        try:
            t = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            return None
    return t + (float("0." + frac) if frac.isdigit() else 0.0)


def days_since_epoch(year: int, month: int, day: int) -> int | None:
    """Days from 1970-01-01 to a proleptic Gregorian date, None if there is no such date
    (what datetime.date gives; its import costs ~1.5 ms of every `ps`)."""
    if not 1 <= month <= 12 or year < 1:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]:
        return None
    y = year - (month <= 2)                  # years counted from March: the leap day comes last
    era, year_of_era = divmod(y, 400)
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _epoch_of_plain(main: str) -> int | None:
    """'YYYY-MM-DDTHH:MM:SS' with every field in range (what docker-mini writes) as epoch
    seconds, or None (then parse_time asks time.strptime, whose first call costs ~2.5 ms: a
    quarter of `ps`'s own work). Gives what strptime + timegm give for the inputs it takes."""
    if (len(main) != 19 or not main.isascii() or main[4] != "-" or main[7] != "-"
            or main[10] != "T" or main[13] != ":" or main[16] != ":"):
        return None
    fields = (main[0:4], main[5:7], main[8:10], main[11:13], main[14:16], main[17:19])
    if not all(f.isdigit() for f in fields):
        return None
    year, month, day, hour, minute, second = map(int, fields)
    if hour > 23 or minute > 59 or second > 59:
        return None
    days = days_since_epoch(year, month, day)
    if days is None:
        return None
    return days * 86400 + hour * 3600 + minute * 60 + second


def render_template(template: str, obj) -> str:
    """A small subset of Go templates: {{.Field}}, {{.A.B}}, {{json .X}}, {{json .}}, \\t and \\n."""
    import re

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
            return jsontext.dumps(lookup(expr[5:].strip()))
        if expr.startswith("."):
            value = lookup(expr)
            if isinstance(value, bool):
                return "true" if value else "false"
            if value is None:
                return "<no value>"
            if isinstance(value, (dict, list)):
                return jsontext.dumps(value)
            return str(value)
        raise errors.InvalidArgument(f"unsupported template expression {{{{{expr}}}}}")

    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return re.sub(r"\{\{(.*?)\}\}", sub, text)
