"""Every mistake in a spec, collected with its file, line and key path, so one run reports all
of them: `stack.yaml:14 containers.web.memory: "12x" is not a size`."""

from __future__ import annotations

import json
from typing import Any, Iterable

from reconciler.core.errors import SpecError

KeyPath = tuple  # a key path: ("containers", "web", "memory") or ("images", 0)


class SpecErrors:
    """Collects SpecErrors; knows each key path's file and line."""

    def __init__(self):
        self.items: list[SpecError] = []
        self.lines: dict[KeyPath, tuple[str, int]] = {}
        self._paths: set[KeyPath] = set()       # the keys reported so far
        self.scope: str | None = None      # the file being parsed, until files are merged
        # a native key path -> the key path the user wrote (a compose file's): errors name that
        self.aliases: dict[KeyPath, KeyPath] = {}

    def key(self, path: KeyPath) -> KeyPath:
        return ((self.scope,) if self.scope else ()) + tuple(path)

    def note_line(self, path: KeyPath, file: str, line: int, replace: bool = True) -> None:
        if replace or self.key(path) not in self.lines:
            self.lines[self.key(path)] = (file, line)

    def alias(self, native: KeyPath, written: KeyPath) -> None:
        self.aliases[self.key(native)] = tuple(written)

    def shown(self, key: KeyPath, path: KeyPath) -> KeyPath:
        """The key path to name in an error: as the user wrote it, when the file was translated."""
        for n in range(len(key), 0, -1):
            if key[:n] in self.aliases:
                return self.aliases[key[:n]] + tuple(key[n:])
        return tuple(path)

    def where(self, path: KeyPath) -> tuple[str | None, int | None]:
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None, None
            p = p[:-1]

    def add(self, path: KeyPath, message: str, hint: str | None = None, *, at: KeyPath | None = None,
            scope: str | None = None):
        """Report `message` about key `path`; its line is that of `at` (default: the path itself),
        looked up under `scope` (a file name) while files are not merged yet."""
        if tuple(path) in self._paths:
            return                              # one error per key: the first says it best
        self._paths.add(tuple(path))
        where = tuple(at if at is not None else path)
        scope = scope if scope is not None else self.scope
        file, line = self.where(((scope,) if scope else ()) + where)
        shown = self.shown(((scope,) if scope else ()) + tuple(path), path) if self.aliases else path
        self.items.append(SpecError(message, file=file, line=line, path=dotted(shown) or None, hint=hint))

    def has_error_under(self, path: KeyPath) -> bool:
        n = len(path)
        return any(p[:n] == tuple(path) for p in self._paths)

    def raise_if_any(self):
        if not self.items:
            return
        self.items.sort(key=lambda e: (e.file or "", e.line or 0))
        if len(self.items) == 1:
            raise self.items[0]
        err = SpecError("\n".join(str(e) for e in self.items))
        err.errors = list(self.items)
        raise err


def dotted(path: Iterable) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
