"""--log-level on every command: the standard library's records from any module reach stderr at
the chosen level; under `watch` they are rendered by structlog like its own events."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from reconciler import log


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_records_at_and_above_the_level_reach_stderr(capsys):
    log.configure("info")
    logging.getLogger("reconciler.engine.somewhere").debug("not shown")
    logging.getLogger("reconciler.engine.somewhere").info("shown: %s", 42)
    err = capsys.readouterr().err
    assert err == "docker-mini: INFO: reconciler.engine.somewhere: shown: 42\n"


def test_default_level_is_warning(capsys):
    log.configure()
    logging.getLogger("reconciler.adapters.x").info("quiet")
    logging.getLogger("reconciler.adapters.x").warning("loud")
    assert capsys.readouterr().err == "docker-mini: WARNING: reconciler.adapters.x: loud\n"


def test_configuring_twice_leaves_one_handler(capsys):
    log.configure("debug")
    log.configure("debug")
    logging.getLogger("x").debug("once")
    assert capsys.readouterr().err.count("once") == 1


def test_structlog_renders_standard_library_records_too(capsys):
    structlog = pytest.importorskip("structlog")
    log.configure_structlog("info", json_output=True)
    logging.getLogger("reconciler.engine.network").info("bridge %s up", "dm0")
    structlog.get_logger("docker-mini.watch").info("watching", directory="/x")
    logging.getLogger("reconciler.engine.network").debug("filtered out")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["event"], e["level"]) for e in lines] == [("bridge dm0 up", "info"), ("watching", "info")]
    assert lines[1]["directory"] == "/x" and lines[0]["logger"] == "reconciler.engine.network"


def test_the_cli_option_reaches_every_command(tmp_path):
    """`--log-level debug ps`: a record logged by an engine module while ps runs is printed."""
    code = ("import logging, sys\nfrom reconciler.cli import main\n"
            "import reconciler.engine.engine as e\n"
            "real = e.Engine.__init__\n"
            "def init(self, *a, **kw):\n"
            "    logging.getLogger('reconciler.engine.engine').debug('engine at %s', a[0])\n"
            "    real(self, *a, **kw)\n"
            "e.Engine.__init__ = init\n"
            "main(sys.argv[1:])\n")
    config = tmp_path / "c.json"
    config.write_text("{}")
    base = [sys.executable, "-c", code, "--root", str(tmp_path / "r"), "--config", str(config)]
    loud = subprocess.run([*base, "--log-level", "debug", "ps"], capture_output=True, text=True, timeout=60)
    assert loud.returncode == 0 and "docker-mini: DEBUG: reconciler.engine.engine: engine at" in loud.stderr
    quiet = subprocess.run([*base, "ps"], capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""
