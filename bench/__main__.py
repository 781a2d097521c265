"""`python -m bench [NAME...]`: run the named benchmarks (default: all) and print ratios."""

from __future__ import annotations

import importlib
import os
import sys

BENCHMARKS = ["pull", "run", "stack"]


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("benchmarks drive real runc, overlayfs and netlink: run them as root", file=sys.stderr)
        return 2
    names = argv or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        print(f"== {name} ==", flush=True)
        module = importlib.import_module(f"bench.{name}")
        failed += module.main() != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
