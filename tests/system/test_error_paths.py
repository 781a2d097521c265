"""A walk through the CLI's error paths, as a careless user (or a hostile file) takes them: every
bad input is refused with one `docker-mini: ...` message and the documented exit code, never a
Python traceback, never an "internal error", and nothing half-written.

Exit codes (README): 125 a usage error on every command; 1 an unknown command or any other
failure; `run`, `create` and `exec` exit 125 when the engine fails, 127 when the command is not
found; 2 only for "changes pending".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.images import small_filesystem

USAGE, FAILED, ENGINE, NOT_FOUND = 125, 1, 125, 127


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cli(root, config_file):
    """Run the real CLI; config=None runs it without --config, config=PATH with that file."""

    def run(*args, config=config_file, timeout=60, root_dir=root):
        cmd = [sys.executable, "-m", "reconciler", "--root", str(root_dir)]
        if config is not None:
            cmd += ["--config", str(config)]
        return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    return run


def refused(proc, code: int, *needles: str) -> None:
    """The command failed cleanly: the expected exit code, a docker-mini message, no traceback."""
    err = proc.stderr
    assert "Traceback" not in err and "Traceback" not in proc.stdout, err
    assert "internal error" not in err, err
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}\n{err}"
    assert any(line.startswith("docker-mini: ") for line in err.splitlines()), err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"


# ------------------------------------------------------------------ the command line itself

USAGE_CASES = [
    ("an unknown flag", ["ps", "--bogus"]),
    ("an unknown short flag", ["ps", "-Z"]),
    ("a flag without its value", ["ps", "--format"]),
    ("a missing argument", ["inspect"]),
    ("run without an image", ["run"]),
    ("rm without a container", ["rm"]),
    ("a bad choice", ["--log-level", "loud", "ps"]),
    ("an extra argument", ["ps", "extra"]),
    ("a non-number where a number goes", ["stop", "-t", "soon", "x"]),
    ("an unknown subcommand of a group", ["system", "bogus"]),
]


@pytest.mark.parametrize("args", [a for _, a in USAGE_CASES], ids=[w for w, _ in USAGE_CASES])
def test_usage_errors_exit_125_with_a_pointer_to_help(cli, args):
    proc = cli(*args)
    refused(proc, USAGE if args[:2] != ["system", "bogus"] else FAILED, "--help")


def test_an_unknown_command_exits_1(cli):
    refused(cli("bogus-command"), FAILED, "bogus-command")


# ------------------------------------------------------------------ the configuration file

@pytest.mark.parametrize("text,needle", [
    ('{"bridge-name": "a-name-that-is-far-too-long"}', "bridge-name"),
    ('{"bridge-subnet": "10.1.2.3/40"}', "bridge-subnet"),
    ('{"no-such-key": 1}', "no-such-key"),
    ('{"bridge-name": ', "JSON"),
    ("[1, 2]", "JSON object"),
    ("[" * 100_000, "JSON"),
    ('{"log-max-size": "lots"}', "log-max-size"),
], ids=["too-long-bridge", "bad-subnet", "unknown-key", "truncated-json", "not-an-object", "deep", "bad-size"])
def test_a_bad_config_file_names_itself_and_the_key(cli, tmp_path, text, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    refused(cli("ps", config=bad), FAILED, str(bad), needle)


def test_a_missing_or_unreadable_config_file(cli, tmp_path):
    refused(cli("ps", config=tmp_path / "missing.json"), FAILED, "missing.json")
    refused(cli("ps", config=tmp_path), FAILED, str(tmp_path))            # a directory


# ------------------------------------------------------------------ stack specs

# never a public registry: if a bad spec slipped through to a pull, it would go nowhere
LOCAL = f"127.0.0.1:{closed_port()}/test/busybox:latest"

SPEC_CASES = {
    "bad-mac": ("stack: shop\ncontainers:\n  web:\n    image: {LOCAL}\n    mac: zz:zz\n", ":5"),
    "python-tag": ("stack: shop\ncontainers:\n  web:\n    image: !!python/object/apply:os.system [\"true\"]\n", ":4"),
    "yaml-syntax": ("stack: shop\ncontainers:\n  web: [\n", ":"),
    "a-list": ("- 1\n- 2\n", "stack.yaml"),
    "bad-memory": ("stack: shop\ncontainers:\n  web:\n    image: {LOCAL}\n    memory: lots\n", ":5"),
    "bad-ip": ("stack: shop\ncontainers:\n  web:\n    image: {LOCAL}\n    ip: 999.1.1.1\n", ":5"),
    "bad-port": ("stack: shop\ncontainers:\n  web:\n    image: {LOCAL}\n    ports: [\"99999:80\"]\n", ":5"),
    "bad-restart": ("stack: shop\ncontainers:\n  web:\n    image: {LOCAL}\n    restart: sometimes\n", ":5"),
    "dependency-cycle": ("stack: shop\ncontainers:\n  a: {image: {LOCAL}, depends_on: [b]}\n"
                         "  b: {image: {LOCAL}, depends_on: [a]}\n", "cycle"),
    "bad-reference": ("stack: shop\ncontainers:\n  web:\n    image: UPPER//case\n", ":4"),
    "empty": ("", "stack.yaml"),
    "binary": ("\x00\x01\x02stack", "stack.yaml"),
    "alias-bomb": ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                   "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                   "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                   "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nstack: [*g]\n", "stack.yaml"),
}


@pytest.mark.parametrize("command", ["apply", "plan"])
@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_a_bad_spec_is_refused_with_its_file_and_line_and_nothing_changes(cli, root, tmp_path, case, command):
    text, needle = SPEC_CASES[case]
    spec = tmp_path / "stack.yaml"
    spec.write_text(text.replace("{LOCAL}", LOCAL))
    before = state_files(root)
    refused(cli(command, "-f", spec, timeout=30), FAILED, "stack.yaml", needle)
    assert state_files(root) == before


def state_files(root: Path) -> list[Path]:
    """What is under the root, but the lock and the cache of schema-valid documents."""
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.name != "lock" and p.relative_to(root).parts[:2] not in (("stacks",), ("stacks", "valid")))


def test_a_missing_spec(cli, tmp_path):
    refused(cli("apply", "-f", tmp_path / "missing.yaml"), FAILED, "missing.yaml")


@pytest.mark.parametrize("kind", ["directory", "dangling-symlink", "fifo", "unreadable"])
def test_an_unreadable_entry_of_a_spec_directory_fails_closed(cli, tmp_path, kind):
    d = tmp_path / "specs"
    d.mkdir()
    (d / "a.yaml").write_text(f"stack: shop\ncontainers:\n  web:\n    image: {LOCAL}\n")
    bad = d / "b.yaml"
    if kind == "directory":
        bad.mkdir()
    elif kind == "dangling-symlink":
        bad.symlink_to(tmp_path / "nowhere.yaml")
    elif kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.write_text("stack: shop\n")
        bad.chmod(0)
        if os.access(bad, os.R_OK):        # root reads mode 000 files: use a directory as a file
            bad.unlink()
            bad.mkdir()
    refused(cli("plan", "-f", d, timeout=30), FAILED, "b.yaml")


# ------------------------------------------------------------------ images and registries

def test_an_invalid_reference(cli):
    refused(cli("pull", "UPPER//case"), FAILED, "UPPER//case")
    refused(cli("pull", "a" * 64), FAILED)


def test_an_unreachable_registry(cli):
    ref = f"127.0.0.1:{closed_port()}/test/busybox:latest"
    refused(cli("pull", ref), FAILED, "127.0.0.1")
    refused(cli("run", "--rm", "--network", "none", ref, "true"), ENGINE, "127.0.0.1")


def test_an_image_the_registry_does_not_have(cli, registry):
    refused(cli("pull", f"{registry.addr}/test/no-such-image:latest"), FAILED, "no-such-image")
    refused(cli("pull", f"{registry.addr}/test/busybox:no-such-tag"), FAILED, "no-such-tag")


def test_missing_local_images(cli):
    refused(cli("rmi", "no-such-image"), FAILED, "no-such-image")
    refused(cli("inspect", "no-such-thing"), FAILED, "no-such-thing")


def test_a_pull_onto_a_full_disk_fails_cleanly(cli, tmp_path, busybox_ref, config_file):
    with small_filesystem(tmp_path / "small", "1m") as small:
        proc = cli("pull", busybox_ref, root_dir=small / "root")
        refused(proc, FAILED)
        assert not list((small / "root" / "overlay-layers").glob("*.json")) \
            if (small / "root" / "overlay-layers").exists() else True


# ------------------------------------------------------------------ containers

def test_missing_containers(cli):
    for args in (["rm", "nosuch"], ["rm", "-f", "nosuch"], ["stop", "nosuch"], ["kill", "nosuch"],
                 ["logs", "nosuch"], ["start", "nosuch"], ["wait", "nosuch"], ["inspect", "nosuch"]):
        refused(cli(*args), FAILED, "nosuch")
    refused(cli("exec", "nosuch", "true"), ENGINE, "nosuch")


def test_bad_run_values_and_a_missing_command(cli, busybox_ref):
    assert cli("pull", busybox_ref).returncode == 0
    for args in (["-m", "lots"], ["-p", "99999:80"], ["--cpus", "many"], ["--restart", "sometimes"],
                 ["--mac-address", "zz:zz"], ["--ip", "999.1.1.1"], ["-e", "=x"]):
        refused(cli("run", "--rm", "--network", "none", *args, busybox_ref, "true"), ENGINE)   # = USAGE
    refused(cli("run", "--rm", "--network", "none", busybox_ref, "/no/such/command"), NOT_FOUND)
    assert cli("ps", "-aq").stdout.strip() == ""
