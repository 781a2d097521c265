"""/proc/self/mountinfo, parsed: what is mounted where. Reading the file is the caller's."""

from __future__ import annotations

import re
from dataclasses import dataclass

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str
    options: str        # the superblock's


def parse(text: str) -> list[Mount]:
    """One Mount per line, in the file's order (a later mount on the same point hides the
    earlier). Paths have their octal escapes ("\\040" for a space) decoded."""
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split(" ")
        if len(fields) < 5:
            continue
        fstype, source, options = (right.split(" ") + ["", "", ""])[:3]
        out.append(Mount(_unescape(fields[4]), fstype, _unescape(source), options))
    return out


def _unescape(field: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)
