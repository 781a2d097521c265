"""Shared fixtures. Area fixtures live in tests/fixtures/ and are loaded as plugins."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.registry",
    "tests.fixtures.network",
    "tests.fixtures.containers",
    "tests.fixtures.nginx",
]

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("docker-mini's tests drive real runc, overlayfs and netlink: run them as root")


def unmount_all_under(path: Path) -> None:
    from reconciler.adapters.overlay import mounts_under

    for mnt in mounts_under(path):          # deepest first
        subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)


@pytest.fixture(scope="session")
def test_network():
    """A bridge name and subnet of this test run's own (never the default docker-mini0)."""
    rnd = random.Random(os.getpid())
    return {"bridge-name": f"dmt{os.getpid() % 100000}",
            "bridge-subnet": f"10.{rnd.randint(200, 250)}.{rnd.randint(0, 255)}.0/24"}


@pytest.fixture
def root(tmp_path):
    """A fresh --root for one test; everything under it is unmounted and removed afterwards."""
    r = tmp_path / "root"
    r.mkdir(mode=0o700)
    yield r
    unmount_all_under(r)
    shutil.rmtree(r, ignore_errors=True)


@pytest.fixture
def config_file(tmp_path, test_network):
    path = tmp_path / "constants.json"
    path.write_text(json.dumps({**test_network, "insecure-registries": []}))
    return path


@pytest.fixture
def dm(root, config_file):
    """Run the real CLI in a subprocess against this test's root: dm('ps', '-a')."""

    def run(*args, check=True, input=None, timeout=120, env=None):
        cmd = [sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(config_file), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    run.root = root
    run.config_file = config_file
    return run
