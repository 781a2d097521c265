"""Docker's --env-file format, for `run --env-file` and a spec's env_file.

KEY=VALUE lines, the value taken verbatim (no quote processing, no trimming: `A="x"` sets A to
`"x"` with its quotes, as Docker does); a bare KEY takes its value from the environment and is
skipped when unset there; blank lines and lines starting with # are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from reconciler.core.errors import InvalidArgument


def parse_env_file(text: str, source: str, lookup: Callable[[str], str | None]) -> list[str]:
    """The KEY=VALUE items of the file, in order. A malformed line raises InvalidArgument
    whose message starts with `source:LINE:`."""
    out = []
    for n, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key:
            raise InvalidArgument(f"{source}:{n}: {_show(raw)} has no variable name before =")
        if any(c.isspace() for c in key):
            raise InvalidArgument(f"{source}:{n}: {_show(raw)} is not NAME=value "
                                  f"(variable {key!r} contains whitespace)")
        if sep:
            out.append(f"{key}={value}")
        elif (v := lookup(key)) is not None:
            out.append(f"{key}={v}")
    return out


def _show(line: str) -> str:
    return json.dumps(line, ensure_ascii=False)
