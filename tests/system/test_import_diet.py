"""`run --rm` loads none of the modules that made every command slow to start: together they
cost more than all of the work a `run --rm` does besides runc (see README, "Layout of the code")."""

from __future__ import annotations

import subprocess
import sys

# each costs milliseconds to import here, or pulls in one that does (re -> enum, functools,
# collections; pathlib -> re, urllib.parse, ipaddress; json -> re; signal -> enum)
HEAVY = ("re", "enum", "functools", "collections", "json", "pathlib", "contextlib", "ipaddress",
         "signal", "typing", "dataclasses", "subprocess", "shutil", "threading", "hashlib",
         "datetime", "urllib", "click")

PROBE = """
import sys
before = set(sys.modules)
from reconciler.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
loaded = sorted(m for m in set(sys.modules) - before if m in HEAVY)
sys.stdout.write(f"exit={code} loaded={','.join(loaded)}\\n")
"""


def _run_and_list(dmc, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}",
                           "--root", str(dmc.root), "--config", str(dmc.config_file), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_run_rm_loads_no_heavy_module(dmc, busybox):
    assert _run_and_list(dmc, "run", "--rm", "--network", "none", busybox, "true") == "exit=0 loaded="


def test_ps_loads_no_heavy_module(dmc, busybox):
    dmc("create", "--network", "none", "--name", "idle", busybox, "true")
    assert _run_and_list(dmc, "ps", "-a") == "exit=0 loaded="


def test_installed_command_imports_no_re():
    """The `docker-mini` command the Makefile installs (pip's wrapper would import re)."""
    from pathlib import Path
    script = Path(sys.executable).with_name("docker-mini")
    text = script.read_text()
    assert "from reconciler.cli import main" in text
    assert "import re" not in text
