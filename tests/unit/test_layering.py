"""The layering in DESIGN.md, enforced: import-linter contracts from pyproject.toml."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_ps_does_not_import_network_or_registry_libraries(tmp_path):
    """Start-up cost: the commands users run most must not load requests or pyroute2."""
    code = (
        "import sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        f"    main(['--root', {str(tmp_path)!r}, 'ps', '-a'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('requests', 'pyroute2', 'libarchive', 'watchfiles') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert "HEAVY=\n" in proc.stdout, proc.stdout + proc.stderr
