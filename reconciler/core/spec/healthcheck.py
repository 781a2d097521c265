"""A container's healthcheck in a spec: its probe checked, its durations read."""

from __future__ import annotations

import re
from typing import Any

from reconciler.core.spec.model import HealthcheckSpec
from reconciler.core.spec.problems import KeyPath, SpecErrors


def _duration(value: Any) -> float:
    """Seconds of a duration: a number, or 1m30s, 500ms (the schema checked the form)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(int(n) * scale[u] for n, u in re.findall(r"(\d+)(ms|h|m|s)", text))


def read_healthcheck(value: Any, path: KeyPath, errors: SpecErrors) -> HealthcheckSpec | None:
    if not isinstance(value, dict):
        return None                              # absent, or the schema says what is wrong
    from reconciler.core.health import HealthcheckError, probe_command
    test = value.get("test")
    try:
        probe_command(test)
    except HealthcheckError as e:
        errors.add(path + ("test",), str(e), "e.g. test: [CMD, wget, -q, --spider, http://localhost/]")
    times = {k: _duration(value[k]) for k in ("interval", "timeout", "start_period") if k in value}
    for k in ("interval", "timeout"):
        if k in times and times[k] <= 0:
            errors.add(path + (k,), f"must be longer than 0 (got {value[k]!r})")
    return HealthcheckSpec(test=tuple(test) if isinstance(test, list) else test,
                           interval=times.get("interval"), timeout=times.get("timeout"),
                           retries=value.get("retries"), start_period=times.get("start_period"),
                           disable=bool(value.get("disable", False)))
