"""The one mutation lock: exclusive across processes and across threads of one process."""

import subprocess
import sys
import threading
import time

from reconciler.core.config import parse_config
from reconciler.engine.engine import Engine


def test_threads_of_one_engine_never_mutate_at_once(tmp_path):
    engine = Engine(tmp_path / "root", parse_config(None))
    inside, overlaps = [], []

    def work():
        with engine.mutation():
            with engine.mutation():  # re-entrant for the holder
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                time.sleep(0.02)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_another_process_waits_for_the_lock(tmp_path):
    engine = Engine(tmp_path / "root", parse_config(None))
    code = (
        "import sys, time\n"
        "from reconciler.core.config import parse_config\n"
        "from reconciler.engine.engine import Engine\n"
        "from reconciler.core.errors import LockTimeout\n"
        f"e = Engine({str(tmp_path / 'root')!r}, parse_config(None))\n"
        "try:\n"
        "    with e.mutation(timeout=0.3):\n"
        "        print('got it')\n"
        "except LockTimeout as err:\n"
        "    print('timeout:', err)\n"
    )
    with engine.mutation():
        held = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert held.stdout.startswith("timeout:"), held.stdout + held.stderr
    assert free.stdout.strip() == "got it", free.stdout + free.stderr


def test_workers_delegated_by_the_holder_run_under_its_lock_one_at_a_time(tmp_path):
    """An apply holds the lock and runs actions in a pool: they must neither deadlock on the
    holder's lock nor mutate at the same moment as each other."""
    from concurrent.futures import ThreadPoolExecutor

    engine = Engine(tmp_path / "root", parse_config(None))
    inside, overlaps = [], []

    def action():
        with engine.mutation(timeout=5):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(len(inside))
            time.sleep(0.02)
            inside.pop()
        return True

    with engine.mutation():
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = [f.result(timeout=10) for f in [pool.submit(engine.delegate(action)) for _ in range(8)]]
    assert results == [True] * 8
    assert overlaps == []
