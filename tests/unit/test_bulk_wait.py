"""engine.bulk's waiter, on real processes (no root): every process past its grace period is
SIGKILLed, one that ends by itself is let go, and none is waited for one after another."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

from reconciler.core.config import parse_config
from reconciler.engine import bulk
from reconciler.engine.engine import Engine

IGNORES_TERM = "trap '' TERM; exec sleep 600"       # SIG_IGN survives the exec
ENDS_ON_TERM = "exec sleep 600"


def spawn(script: str) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", script])


def test_wait_stopped_kills_at_the_deadline_and_lets_the_others_go(tmp_path):
    engine = Engine(tmp_path / "root", parse_config(None))
    stubborn = [spawn(IGNORES_TERM) for _ in range(20)]
    polite = [spawn(ENDS_ON_TERM) for _ in range(3)]
    time.sleep(0.2)                                   # the traps are set
    deadline = time.monotonic() + 0.5
    waiting = [bulk.Stopping(f"c{p.pid}", str(p.pid), p.pid, None, deadline) for p in stubborn + polite]
    for p in stubborn + polite:
        p.send_signal(signal.SIGTERM)
    try:
        # reaped as they end, as conmon reaps a container's process (a zombie still has a /proc entry)
        for p in stubborn + polite:
            threading.Thread(target=p.wait, daemon=True).start()
        bulk.wait_stopped(engine, waiting)
        codes = [p.wait(timeout=10) for p in stubborn + polite]
    finally:
        for p in stubborn + polite:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [-signal.SIGKILL] * 20 + [-signal.SIGTERM] * 3
    assert all(s.killed for s in waiting[:20]) and not any(s.killed for s in waiting[20:])
    assert all(s.error is None for s in waiting)
