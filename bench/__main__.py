"""`python -m bench [NAME...]`: run the named benchmarks (default: all) and print ratios."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
import traceback

BENCHMARKS = ["pull", "run", "network", "stack", "compose"]


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("benchmarks drive real runc, overlayfs and netlink: run them as root", file=sys.stderr)
        return 2
    names = argv or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    # a bench stopped by SIGTERM or SIGHUP still runs its cleanups (private dockerd, mounts, bridges)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    failed = 0
    for name in names:
        print(f"== {name} ==", flush=True)
        start = time.monotonic()
        try:
            failed += importlib.import_module(f"bench.{name}").main() != 0
        except Exception:       # one broken benchmark (or engine) does not hide the others' figures
            traceback.print_exc()
            print(f"{name}: failed", flush=True)
            failed += 1
        # `make bench` as a whole is to stay under ~20 minutes
        print(f"({name} took {time.monotonic() - start:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
