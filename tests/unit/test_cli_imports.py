"""Which third-party packages the everyday commands load: the heavy ones (requests, pyroute2,
libarchive, jsonschema, structlog, watchfiles, yaml) only where a command uses them. `run` of a
local image is in tests/system/test_import_diet.py (it needs root and an image)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("requests", "pyroute2", "libarchive", "jsonschema", "structlog", "watchfiles", "yaml")

# the command runs in this process; then the top-level packages it loaded that are neither the
# standard library's nor ours are printed
PROBE = """
import sys
from reconciler.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
ours = {"reconciler", "__main__", "_distutils_hack"}
loaded = {m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - ours
loaded = {m for m in loaded if not m.startswith("__editable__")}
print(f"exit={code} third-party={','.join(sorted(loaded))}", file=sys.stderr)
"""


def third_party_loaded(tmp_path, *args: str) -> tuple[int, set[str]]:
    config = tmp_path / "constants.json"
    config.write_text("{}")
    p = subprocess.run([sys.executable, "-c", PROBE, "--root", str(tmp_path / "root"), "--config", str(config),
                        *args], capture_output=True, text=True, timeout=60)
    last = p.stderr.strip().splitlines()[-1]
    code, _, packages = last.partition(" third-party=")
    return int(code.removeprefix("exit=")), set(filter(None, packages.split(",")))


@pytest.mark.parametrize("args, code", [
    (["ps", "-a"], 0),
    (["ps", "-a", "--format", "json"], 0),
    (["inspect", "nosuch"], 1),
    (["--help"], 0),
    (["run", "--help"], 0),
    (["images"], 0),
])
def test_everyday_commands_load_no_heavy_package(tmp_path, args, code):
    exit_code, loaded = third_party_loaded(tmp_path, *args)
    assert exit_code == code
    assert "click" in loaded                                 # the probe sees what was imported
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_probe_sees_a_heavy_package_when_one_is_used(tmp_path):
    """`plan` reads YAML: the same probe reports yaml, so the assertions above prove something."""
    (tmp_path / "stack.yaml").write_text("name: s\ncontainers: {}\n")
    _, loaded = third_party_loaded(tmp_path, "plan", "-f", str(tmp_path / "stack.yaml"))
    assert "yaml" in loaded


def test_ps_loads_no_networking_or_lifecycle(tmp_path):
    """`ps` only reads records and pids: networking, the lifecycle, runc's adapter and hashlib
    (OpenSSL) are other commands' start-up cost (engine.containers.liveness sits below
    engine.network; computing digests is core.hashing's, conmon's socket paths are in sockets)."""
    config = tmp_path / "constants.json"
    config.write_text("{}")
    probe = PROBE.replace('print(f"exit=', 'print(",".join(sorted(sys.modules)), file=sys.stderr)\nprint(f"exit=')
    p = subprocess.run([sys.executable, "-c", probe, "--root", str(tmp_path / "root"), "--config", str(config),
                        "ps", "-a"], capture_output=True, text=True, timeout=60)
    modules = set(p.stderr.strip().splitlines()[-2].split(","))
    assert "reconciler.engine.containers.listing" in modules       # the probe saw ps at work
    unwanted = {"reconciler.engine.network", "reconciler.engine.containers.lifecycle",
                "reconciler.engine.containers.reaping", "reconciler.adapters.runtime.runc", "subprocess",
                "hashlib", "socket"}
    assert not modules & unwanted, sorted(modules & unwanted)
