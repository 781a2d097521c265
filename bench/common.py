"""Helpers the benchmarks share: timing a command, a scratch directory and its teardown."""

from __future__ import annotations

import contextlib
import json
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


def _ppids() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                out[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return out


def reap_docker_mini_root(root: Path, bridge: str | None = None) -> list[str]:
    """What a docker-mini root's containers hold outside the root, removed without asking
    docker-mini (which may be what failed): their conmon monitors and processes, network
    namespaces and cgroups, the bench's bridge and the root's user-defined networks' bridges, with
    their nftables tables. Returns what it found."""
    found = []
    ids = set()
    containers = Path(root) / "overlay-containers"
    if containers.is_dir():
        ids |= {p.name for p in containers.iterdir() if re.fullmatch(r"[0-9a-f]{64}", p.name)}
    needle = str(root).encode()
    monitors = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(b"conmon") and any(needle in a for a in argv) and b"-c" in argv:
                monitors.append(int(entry.name))
                ids.add(argv[argv.index(b"-c") + 1].decode())
    if monitors:
        found.append(f"{len(monitors)} conmon monitor(s) still running")
        children = [pid for pid, ppid in _ppids().items() if ppid in monitors]
        for pid in [*monitors, *children]:      # the monitor first: no exit command runs
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        time.sleep(0.5)
    for cid in sorted(ids):
        netns = Path("/run/netns") / f"dm-{cid[:32]}"
        if netns.exists():
            subprocess.run(["ip", "netns", "del", netns.name], capture_output=True)
        for cg in Path("/sys/fs/cgroup").glob(f"*/docker-mini/{cid}"):
            for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [cg]:
                with contextlib.suppress(OSError):
                    d.rmdir()
    bridges = [bridge] if bridge else []
    for record in (Path(root) / "networks").glob("*.json"):      # user-defined networks
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            bridges.append(json.loads(record.read_text())["bridge"])
    for name in bridges:
        if Path("/sys/class/net", name).exists():
            found.append(f"bridge {name} still there")
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        if subprocess.run(["nft", "delete", "table", "ip", f"dm-{name}"], capture_output=True).returncode == 0 \
                and name != bridge:
            found.append(f"nftables table dm-{name} still there")
    return found
