"""The exec user of a container: Docker's -u semantics against the rootfs's /etc/passwd and /etc/group. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.errors import InvalidArgument

@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _parse_db(text: str | None, fields_min: int) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields_min:
            rows.append(parts)
    return rows


def _is_id(text: str) -> bool:
    """A uid or gid as passwd, group and -u write them: ASCII digits, below 2^32."""
    return text.isascii() and text.isdigit() and int(text) < 1 << 32


def resolve_user(user: str | None, passwd: str | None, group: str | None) -> ExecUser:
    """Docker's -u semantics: "", "name", "uid", "name:group", "uid:gid" against the rootfs files."""
    spec = (user or "").strip()
    user_part, _, group_part = spec.partition(":")
    users = _parse_db(passwd, 7)
    groups = _parse_db(group, 4)

    uid, gid, home, name = 0, 0, "/", None
    entry = None
    if user_part == "" or _is_id(user_part):
        uid = int(user_part or 0)
        entry = next((u for u in users if _is_id(u[2]) and int(u[2]) == uid), None)
    else:
        entry = next((u for u in users if u[0] == user_part), None)
        if entry is None:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
    if entry is not None:
        if not _is_id(entry[2]):
            raise InvalidArgument(f"the container's /etc/passwd entry for {entry[0]!r} has a "
                                  f"non-numeric uid {entry[2]!r}")
        name = entry[0]
        uid = int(entry[2])
        gid = int(entry[3]) if _is_id(entry[3]) else 0
        home = entry[5] or "/"
    if group_part:
        if _is_id(group_part):
            gid = int(group_part)
        else:
            g = next((g for g in groups if g[0] == group_part), None)
            if g is None or not _is_id(g[2]):
                raise InvalidArgument(f"unable to find group {group_part}: no matching entries in group file")
            gid = int(g[2])
    extra: list[int] = []
    if name is not None:
        for g in groups:
            members = [m.strip() for m in g[3].split(",") if m.strip()]
            if name in members and _is_id(g[2]) and int(g[2]) != gid and int(g[2]) not in extra:
                extra.append(int(g[2]))
    return ExecUser(uid, gid, tuple(extra), home)
