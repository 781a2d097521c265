"""depends_on: its two spellings read, unknown and cyclic dependencies reported, and the
containers put in dependency order."""

from __future__ import annotations

import difflib
from typing import Any

from reconciler.core.spec.model import ServiceSpec
from reconciler.core.spec.problems import SpecErrors, show


def read_depends_on(value: Any) -> tuple[list, tuple[tuple[str, str], ...]]:
    """depends_on as a list of services, or a map of service -> {condition: ...}: the services
    and the conditions other than service_started."""
    if not isinstance(value, dict):
        return list(value or []), ()
    conditions = tuple((dep, cond) for dep, v in value.items()
                       if isinstance(v, dict) and (cond := v.get("condition", "service_started")) != "service_started")
    return list(value), conditions


def check_dependencies(services: dict[str, ServiceSpec], errors: SpecErrors) -> list[str]:
    """Report unknown and cyclic depends_on; return the services in dependency order."""
    names = list(services)
    for name, s in services.items():
        for i, dep in enumerate(s.depends_on):
            path = ("containers", name, "depends_on", i)
            if not isinstance(dep, str):
                continue                        # the schema says what is wrong
            if dep == name:
                errors.add(path, f"{show(name)} depends on itself")
            elif dep not in services:
                close = difflib.get_close_matches(dep, names, n=1, cutoff=0.6)
                errors.add(path, f"depends on unknown container {show(dep)}",
                           f"did you mean {show(close[0])}?" if close else
                           "known: " + ", ".join(names))
    order: list[str] = []
    state: dict[str, int] = {}           # 1 visiting, 2 done
    stack: list[str] = []
    reported: set[frozenset] = set()

    def visit(n: str):
        state[n] = 1
        stack.append(n)
        for d in services[n].depends_on:
            if not isinstance(d, str) or d not in services or d == n:
                continue
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    errors.add(("containers", cycle[0], "depends_on"),
                               "depends_on cycle: " + " -> ".join(cycle))
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2
        order.append(n)

    for n in names:
        if n not in state:
            visit(n)
    return order
