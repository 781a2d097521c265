"""Errors at the top of the CLI: every failure is one `docker-mini: ...` line with Docker's exit
code, never a Python traceback unless --debug is given. No root needed."""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import click
import pytest

from reconciler.cli import common
from reconciler.core import errors


def group_raising(error: BaseException) -> click.Group:
    """A CLI whose every command (ps, run, exec...) raises `error`; --debug as the real one."""
    @click.group("docker-mini")
    @click.option("--debug", is_flag=True)
    def top(debug):
        pass

    def fail():
        raise error

    for name in ("ps", "run", "create", "exec", "rm"):
        top.add_command(click.Command(name, callback=fail))
    return top


CASES = [
    # error, command, exit code, the stderr
    (errors.ContainerNotFound("no such container: web"), "ps", 1,
     "docker-mini: error: no such container: web\n"),
    (errors.InvalidArgument("bad filter", hint="use label=..."), "ps", 1,
     "docker-mini: error: bad filter\n  hint: use label=...\n"),
    (errors.ImageNotFound("no such image"), "run", 125, "docker-mini: error: no such image\n"),
    (errors.CommandNotFound("nope: not found"), "run", 127, "docker-mini: error: nope: not found\n"),
    (errors.CommandNotExecutable("x: permission denied"), "exec", 126,
     "docker-mini: error: x: permission denied\n"),
    (OSError(errno.ENOSPC, "No space left on device", "/var/lib/docker-mini/tmp/x"), "ps", 1,
     "docker-mini: error: /var/lib/docker-mini/tmp/x: No space left on device\n"),
    (PermissionError(errno.EACCES, "Permission denied"), "create", 125,
     "docker-mini: error: create: Permission denied\n"),
    (ValueError("invalid literal"), "rm", 1,
     "docker-mini: error: internal error: ValueError: invalid literal (run with --debug for the traceback)\n"),
    (TypeError("unhashable type: 'list'"), "run", 125,
     "docker-mini: error: internal error: TypeError: unhashable type: 'list' (run with --debug for the traceback)\n"),
    (KeyboardInterrupt(), "ps", 130, ""),
    (KeyboardInterrupt(), "run", 130, ""),
]


@pytest.mark.parametrize("error, command, code, stderr", CASES, ids=[f"{type(c[0]).__name__}-{c[1]}" for c in CASES])
def test_every_error_is_one_line_and_an_exit_code(capsys, error, command, code, stderr):
    assert common.run_cli(group_raising(error), [command]) == code
    out, err = capsys.readouterr()
    assert (out, err) == ("", stderr)


def test_debug_adds_the_traceback(capsys):
    assert common.run_cli(group_raising(ValueError("boom")), ["--debug", "ps"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n") and "ValueError: boom" in err
    assert err.endswith("docker-mini: error: internal error: ValueError: boom\n")


def test_a_click_exception_from_a_command_is_reported_too(capsys):
    assert common.run_cli(group_raising(click.FileError("x.yaml", "gone")), ["ps"]) == 1
    assert capsys.readouterr().err.startswith("docker-mini: error: Could not open file")


# ------------------------------------------------------------------------ through the real CLI


def cli(root, config_file, *args, env=None):
    return subprocess.run([sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(config_file),
                           *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def dmu(tmp_path):
    """The real CLI against an empty root of this test's own (nothing here needs root)."""
    config = tmp_path / "constants.json"
    config.write_text("{}")
    return lambda *args: cli(tmp_path / "root", config, *args)


@pytest.mark.parametrize("args", [
    ["ps", "--foo"], ["ps", "a"], ["run", "--foo", "img"], ["run"], ["create", "--stop-timeout", "x", "img"],
    ["exec", "box"], ["logs"], ["inspect", "--type", "volume", "x"], ["plan"], ["apply", "-f"],
    ["watch", "/nonexistent-dir"], ["network", "ls", "--format", "yaml"], ["system", "check", "--nope"],
    ["--log-level", "loud", "ps"], ["--nope", "ps"], ["completion", "tcsh"],
])
def test_usage_errors_exit_125_on_every_command(dmu, args):
    p = dmu(*args)
    assert p.returncode == 125, p.stderr
    assert p.stdout == "" and p.stderr.startswith("docker-mini: ") and "\nSee 'docker-mini" in p.stderr
    assert "Traceback" not in p.stderr


def test_unknown_command_exits_1_as_docker_does(dmu):
    p = dmu("nope")
    assert p.returncode == 1
    assert p.stderr == "docker-mini: 'nope' is not a docker-mini command.\nSee 'docker-mini --help'.\n"
    assert dmu("network", "nope").returncode == 1


@pytest.mark.parametrize("args, code, needle", [
    (["inspect", "nosuch"], 1, "No such object: nosuch"),
    (["logs", "nosuch"], 1, "nosuch"),
    (["rm", "nosuch"], 1, "nosuch"),
    (["stop", "a", "b"], 1, "docker-mini: error: "),
    (["ps", "--filter", "color=red"], 1, "invalid filter"),
    (["ps", "--format", "{{.Nope"], 0, ""),
])
def test_engine_errors_are_one_line_with_docker_s_codes(dmu, args, code, needle):
    p = dmu(*args)
    assert p.returncode == code, p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr


def test_an_os_error_names_what_failed(tmp_path):
    config = tmp_path / "constants.json"
    config.write_text("{}")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    p = cli(not_a_dir, config, "ps")
    assert p.returncode == 1 and p.stderr.startswith(f"docker-mini: error: {not_a_dir}/")
    assert p.stderr.endswith(": Not a directory\n")


def test_bad_configuration_is_an_error_and_never_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bridge-name": "a-name-that-is-far-too-long"}))
    p = cli(tmp_path / "root", bad, "plan", "-f", str(tmp_path))
    assert p.returncode == 1 and "bridge-name" in p.stderr and "Traceback" not in p.stderr


def test_help_version_and_completion(dmu):
    top = dmu("--help")
    assert top.returncode == 0 and top.stdout.startswith("Usage: docker-mini [OPTIONS] COMMAND")
    for name in ("run", "ps", "pull", "network", "system", "apply", "completion"):
        assert f"\n  {name} " in top.stdout
    assert "container-cleanup" not in top.stdout
    assert dmu("-h").stdout == top.stdout
    run = dmu("run", "--help")
    assert run.returncode == 0 and run.stdout.startswith("Usage: docker-mini run [OPTIONS] IMAGE [COMMAND] [ARG...]")
    assert "-h, --hostname TEXT" in run.stdout and "-h, --help" not in run.stdout
    assert dmu("--version").stdout == "docker-mini version 0.1.0\n"
    for shell, needle in (("bash", "_DOCKER_MINI_COMPLETE=bash_complete"), ("zsh", "#compdef docker-mini"),
                          ("fish", "_DOCKER_MINI_COMPLETE=fish_complete")):
        p = dmu("completion", shell)
        assert p.returncode == 0 and needle in p.stdout


def test_the_shell_gets_completions(tmp_path):
    import os
    env = {**os.environ, "_DOCKER_MINI_COMPLETE": "bash_complete", "COMP_WORDS": "docker-mini pu", "COMP_CWORD": "1"}
    p = subprocess.run([sys.executable, "-m", "reconciler"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and p.stdout.split() == ["plain,pull"]
