"""Which third-party packages `run --network none` of a local image loads: none of the heavy ones
that only pulling (requests), networking (pyroute2), specs (jsonschema) or watching (watchfiles)
need. The commands that need no root (ps, inspect, --help) are in tests/unit/test_cli_imports.py."""

from __future__ import annotations

import subprocess
import sys

NOT_FOR_RUN = ("requests", "pyroute2", "jsonschema", "watchfiles", "structlog", "yaml")

PROBE = """
import sys
from reconciler.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
loaded = {m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)
print(f"exit={code} third-party={','.join(sorted(loaded))}", file=sys.stderr)
"""


def third_party_loaded(dmc, *args: str) -> tuple[str, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, "--root", str(dmc.root), "--config", str(dmc.config_file),
                           *args], capture_output=True, text=True, timeout=120)
    code, _, packages = proc.stderr.strip().splitlines()[-1].partition(" third-party=")
    return code, set(packages.split(","))


def test_run_of_a_local_image_loads_no_network_or_spec_package(dmc, busybox):
    code, loaded = third_party_loaded(dmc, "run", "--rm", "--network", "none", busybox, "true")
    assert code == "exit=0"
    assert "click" in loaded                          # the probe does see what was imported
    assert not loaded & set(NOT_FOR_RUN), sorted(loaded & set(NOT_FOR_RUN))


def test_ps_of_a_created_container_loads_no_heavy_package(dmc, busybox):
    dmc("create", "--network", "none", "--name", "idle", busybox, "true")
    code, loaded = third_party_loaded(dmc, "ps", "-a")
    assert code == "exit=0"
    assert not loaded & {*NOT_FOR_RUN, "libarchive"}, sorted(loaded & {*NOT_FOR_RUN, "libarchive"})
