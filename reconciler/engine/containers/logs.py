"""`logs`: a container's output, read from its k8s-file log (as conmon writes it).

Each entry is "<RFC 3339 time> <stream> <F|P> <text>\\n"; P marks a partial line whose rest
follows in the stream's next entries. Past --log-max-size the writer starts a new file (renamed
into place): a line whose first part was in the discarded file then begins the new file with
its rest. The record keeps the inode of the log create made; a file with another inode has
been started over, and its first line on each stream, which may be such a rest, is dropped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from reconciler.engine.containers.liveness import current_state
from reconciler.engine.containers.store import load, monitor_paths, resolve

STREAMS = ("stdout", "stderr")


@dataclass(frozen=True)
class LogLine:
    stream: str        # "stdout" | "stderr"
    timestamp: str     # RFC 3339 with nanoseconds, as the writer wrote it
    data: bytes        # the line, with its newline


@dataclass
class LogParser:
    """Entries to lines: joins partial entries, and drops a leading fragment after a rotation."""
    pending: dict[str, bytes] = field(default_factory=dict)
    skipping: set[str] = field(default_factory=set)     # streams whose first line is dropped

    def started_over(self, rotated: bool) -> None:
        """A new file is read from its start; rotated: it replaced a full one."""
        if not rotated:
            self.pending, self.skipping = {}, set()
        elif self.pending:
            # following: the partial line read from the old file goes on in the new one
            self.skipping = set()
        else:
            self.skipping = set(STREAMS)

    def parse(self, raw: bytes) -> LogLine | None:
        parts = raw.rstrip(b"\n").split(b" ", 3)
        if len(parts) < 3:
            return None
        ts, stream, tag = parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), parts[2]
        content = parts[3] if len(parts) > 3 else b""
        if tag == b"P":
            self.pending[stream] = self.pending.get(stream, b"") + content
            return None
        data = self.pending.pop(stream, b"") + content + b"\n"
        if stream in self.skipping:
            self.skipping.discard(stream)
            return None
        return LogLine(stream, ts, data)

    def read(self, f, emit: Callable[[LogLine], Any]) -> int:
        """Parse the complete entries from f's position; returns the bytes consumed."""
        used = 0
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            used += len(raw)
            item = self.parse(raw)
            if item is not None:
                emit(item)
        return used


def read_logs(engine, name_or_id: str, *, tail: int | None = None, follow: bool = False,
              since: str | None = None) -> Iterator[LogLine]:
    """The container's output from its log; follow keeps reading until it exits."""
    rec = resolve(engine, name_or_id)
    log = monitor_paths(engine, rec.id).log
    first_inode = rec.log_inode
    parser = LogParser()
    lines: list[LogLine] = []
    pos, ino = 0, None
    try:
        with open(log, "rb") as f:
            ino = os.fstat(f.fileno()).st_ino
            parser.started_over(rotated=first_inode is not None and ino != first_inode)
            pos = parser.read(f, lines.append)
    except FileNotFoundError:
        pass
    if tail is not None and tail >= 0:
        lines = lines[len(lines) - tail:] if tail else []
    yield from lines
    if not follow:
        return
    while True:
        running = current_state(engine, rec, grace=0.05).running
        try:
            with open(log, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_ino != ino or st.st_size < pos:    # the writer started a new file
                    parser.started_over(rotated=ino is not None or (
                        first_inode is not None and st.st_ino != first_inode))
                    ino, pos = st.st_ino, 0
                f.seek(pos)
                fresh: list[LogLine] = []
                pos += parser.read(f, fresh.append)
            yield from fresh
        except FileNotFoundError:
            if load(engine, rec.id) is None:
                return
        if not running:
            return
        time.sleep(0.1)
