"""The watcher's restart backoff of a stack container: the one module that reads and writes it.

Kept in the container's directory (restart-backoff.json) so a restarted watcher keeps it and
`ps` can show a held restart as Docker does: `Restarting (1) 4 seconds ago`. Times in the file
are RFC 3339 (UTC); the functions take and give epoch seconds, as time.time(). When to restart
is core.restart's decision (next_delay, backoff_expired); this module only keeps the record.

    {"count": 3, "delay": 4.0, "policy": "on-failure", "last_exit_code": 3,
     "restarted_at": "2026-12-02T15:00:01.250Z", "next_restart": "2026-12-02T15:00:05.250Z" | null}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from reconciler.core import restart
from reconciler.core.errors import DockerMiniError

FILE = "restart-backoff.json"
STALE_AFTER = 600.0       # a hold this overdue has no watcher acting on it any more


def to_rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_rfc3339(text: str) -> float:
    """Epoch seconds; ValueError if `text` is no RFC 3339 time."""
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return when.timestamp()


@dataclass(frozen=True)
class Entry:
    count: int = 0                     # restarts since the last clean run
    delay: float = 0.0                 # seconds the next restart waits after restarted_at
    restarted_at: float = 0.0          # epoch seconds of the last restart
    next_restart: float | None = None  # set while a restart is held back
    policy: str = ""
    last_exit_code: int | None = None

    @property
    def due(self) -> float:
        return self.restarted_at + self.delay

    def to_json(self) -> dict:
        data = asdict(self)
        data["restarted_at"] = to_rfc3339(self.restarted_at)
        data["next_restart"] = None if self.next_restart is None else to_rfc3339(self.next_restart)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Entry:
        """ValueError/TypeError/KeyError when `data` is not such an entry."""
        if not isinstance(data, dict):
            raise TypeError("not an object")
        nxt = data.get("next_restart")
        return cls(count=int(data.get("count", 0)), delay=float(data.get("delay", 0.0)),
                   restarted_at=from_rfc3339(data["restarted_at"]),
                   next_restart=None if nxt is None else from_rfc3339(nxt),
                   policy=str(data.get("policy") or ""), last_exit_code=data.get("last_exit_code"))


def _path(engine, container_id: str) -> Path:
    return engine.layout.container_dir(container_id) / FILE


def read(engine, container_id: str) -> Entry | None:
    """The entry, or None when there is none or it cannot be read (then it starts over)."""
    try:
        data = engine.state_files.read_json(_path(engine, container_id), default=None)
        return None if data is None else Entry.from_json(data)
    except (DockerMiniError, OSError, ValueError, TypeError, KeyError):
        return None


def _write(engine, container_id: str, entry: Entry) -> None:
    path = _path(engine, container_id)
    if path.parent.is_dir():                 # never recreate a removed container's directory
        engine.state_files.write_json(path, entry.to_json())


def current(engine, container_id: str, now: float) -> Entry | None:
    """The entry, or None once the container has run cleanly long enough to start over."""
    entry = read(engine, container_id)
    if entry is None or restart.backoff_expired(entry.restarted_at, entry.delay, now):
        return None
    return entry


def restart_counts(engine, ids) -> dict[str, int]:
    return {cid: (e.count if (e := read(engine, cid)) else 0) for cid in ids}


def due(engine, container_id: str, now: float) -> float:
    """When this container may be restarted next (epoch seconds; 0.0: at once)."""
    entry = current(engine, container_id, now)
    return entry.due if entry else 0.0


def record_restart(engine, container_id: str, policy: str, exit_code: int | None, now: float) -> Entry:
    entry = current(engine, container_id, now)
    entry = Entry(count=(entry.count if entry else 0) + 1,
                  delay=restart.next_delay(entry.delay if entry else None),
                  restarted_at=now, policy=policy, last_exit_code=exit_code)
    _write(engine, container_id, entry)
    return entry


def hold(engine, container_id: str, policy: str, exit_code: int | None, when: float) -> None:
    """The container waits for its restart until `when`: ps shows it as Restarting."""
    entry = read(engine, container_id) or Entry(restarted_at=when)
    if entry.next_restart is None or to_rfc3339(entry.next_restart) != to_rfc3339(when):
        _write(engine, container_id, replace(entry, next_restart=when, policy=policy,
                                             last_exit_code=exit_code))


def is_restarting(engine, container_id: str, status: str, now: float,
                  stale_after: float = STALE_AFTER) -> bool:
    """For `ps`: an exited container whose restart the watcher holds back."""
    if status != "exited":
        return False
    entry = read(engine, container_id)
    return bool(entry and entry.next_restart is not None and now - entry.next_restart < stale_after)
