"""Helpers the benchmarks share: timing a command, a scratch directory and its teardown."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def docker_mini_command() -> list[str]:
    """The installed `docker-mini`, as users run it (not `python -m`, which also loads runpy)."""
    script = Path(sys.executable).with_name("docker-mini")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    """Run cmd with its output captured; its wall time in seconds and the finished process."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, proc


def timed_run(cmd: list[str], **kw) -> float:
    """Run cmd, return its wall time in seconds; raise with its stderr's tail if it failed."""
    elapsed, proc = timed(cmd, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return elapsed


def interleaved(peers: dict, runs: int) -> dict[str, list[float]]:
    """Time each peer `runs` times, taking turns (so drift in the machine's load hits all alike),
    after one untimed warm-up each (page cache, binaries, first-use directories)."""
    for fn in peers.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(runs):
        for name, fn in peers.items():
            times[name].append(fn())
    return times


def unmount_under(path: Path) -> None:
    """Lazily unmount every mount at or below path, deepest first (from the mount table itself:
    the cleanup must not depend on the engine's internals working)."""
    prefix = os.path.realpath(path)
    points = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            points.add(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


@contextlib.contextmanager
def scratch(prefix: str):
    """A fresh work directory under /var/tmp; whatever happens, what is mounted below it is
    unmounted and it is removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        yield work
    finally:
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
