"""/proc/self/mountinfo, parsed: what is mounted where. Reading the file is the caller's."""

from __future__ import annotations

from reconciler.core.record import FrozenRecord


class Mount(FrozenRecord):
    __slots__ = ("point", "fstype", "source", "options")   # options: the superblock's

    def __init__(self, point: str, fstype: str, source: str, options: str):
        self._set(point, fstype, source, options)


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
    if "\\" not in field:     # the usual case: no octal escapes, no regular expression needed
        return field
    import re
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
