"""The watcher's restart backoff record (engine.backoff): doubling, ceiling, reset, file format."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.core.config import parse_config
from reconciler.engine import backoff
from reconciler.engine.engine import Engine


def engine_with(tmp_path, *ids):
    engine = Engine(tmp_path / "root", parse_config(None))
    for cid in ids:
        Path(engine.layout.container_dir(cid)).mkdir(parents=True)
    return engine


def test_backoff_doubles_to_five_minutes_and_resets_after_ten_clean_minutes(tmp_path):
    cid = "c" * 64
    engine = engine_with(tmp_path, cid)
    now = 1_000_000.0
    assert backoff.due(engine, cid, now) == 0.0            # never restarted: at once
    delays = []
    for _ in range(11):
        now = max(now, backoff.due(engine, cid, now))
        delays.append(backoff.record_restart(engine, cid, "always", 1, now).delay)
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff.restart_counts(engine, [cid]) == {cid: 11}
    assert backoff.due(engine, cid, now + 1) == now + 300  # held back
    later = now + 300 + 600 + 1                            # ran cleanly for ten minutes
    assert backoff.due(engine, cid, later) == 0.0
    assert backoff.record_restart(engine, cid, "always", 1, later).count == 1


def test_a_removed_containers_directory_is_never_brought_back(tmp_path):
    engine = engine_with(tmp_path)
    gone = "d" * 64
    backoff.record_restart(engine, gone, "always", 1, 1_000_000.0)
    assert not Path(engine.layout.container_dir(gone)).exists()


def test_times_on_disk_are_rfc3339_and_a_hold_shows_as_restarting(tmp_path):
    cid = "e" * 64
    engine = engine_with(tmp_path, cid)
    now = 1_764_680_000.0
    backoff.record_restart(engine, cid, "on-failure", 3, now)
    backoff.hold(engine, cid, "on-failure", 3, now + 1)
    data = json.loads((Path(engine.layout.container_dir(cid)) / backoff.FILE).read_text())
    assert data["restarted_at"] == "2025-12-02T12:53:20.000Z"
    assert data["next_restart"] == "2025-12-02T12:53:21.000Z"
    assert data["count"] == 1 and data["policy"] == "on-failure" and data["last_exit_code"] == 3
    assert backoff.is_restarting(engine, cid, "exited", now + 2)
    assert not backoff.is_restarting(engine, cid, "running", now + 2)
    assert not backoff.is_restarting(engine, cid, "exited", now + 1 + backoff.STALE_AFTER)


def test_an_unreadable_record_starts_over(tmp_path):
    cid = "f" * 64
    engine = engine_with(tmp_path, cid)
    (Path(engine.layout.container_dir(cid)) / backoff.FILE).write_text('{"count": 2, "restarted_at": "yesterday"}')
    assert backoff.read(engine, cid) is None
    assert backoff.record_restart(engine, cid, "always", 1, 1_000_000.0).count == 1
