"""Processes by pid, safe against pid reuse: a pid names the process only together with its
start time (clock ticks since boot, from /proc/<pid>/stat)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of pid, or None if it is gone or a zombie."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    if pid <= 0:
        return False
    st = process_start_time(pid)
    return st is not None and (start_time is None or st == start_time)


def signal_pid(pid: int, sig: int, start_time: int | None) -> bool:
    """Signal pid only if it is still the process that started at start_time (pidfd: no reuse race)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:         # ProcessLookupError among them: it is gone
        return False
    try:
        if not pid_alive(pid, start_time):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)
