"""docker-mini's own command-line parser (reconciler/cli/flags.py): Docker's conventions.

Most tests are in-process against small commands built here; the last ones drive the real CLI.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler.cli import flags


def make_run():
    """A `run`-like command: interspersed=False, -h taken by --hostname, every kind of option."""
    @flags.command("run", interspersed=False, usage="IMAGE [COMMAND] [ARG...]")
    @flags.option("-d", "--detach", is_flag=True, help="Run in the background.")
    @flags.option("-i", "--interactive", is_flag=True)
    @flags.option("-t", "--tty", is_flag=True)
    @flags.option("-e", "--env", "env", multiple=True, help="Set environment variables.")
    @flags.option("-p", "--publish", "ports", multiple=True)
    @flags.option("-h", "--hostname")
    @flags.option("--name")
    @flags.option("--rm", "auto_remove", is_flag=True)
    @flags.option("--sig-proxy/--no-sig-proxy", default=True, show_default=True)
    @flags.option("--stop-timeout", type=int)
    @flags.option("--cpus", type=float)
    @flags.option("--network", "--net", "network", default="bridge", show_default=True, help="Network.")
    @flags.option("--format", "fmt", type=flags.Choice(["table", "json"]))
    @flags.option("--secret", hidden=True)
    @flags.argument("image")
    @flags.argument("command", nargs=-1, type=flags.UNPROCESSED)
    @flags.pass_context
    def run(ctx, **params):
        """Create and run a container.

        Second paragraph."""
        return ctx, params
    return run


def make_group():
    @flags.group("docker-mini")
    @flags.option("--root", envvar="DM_TEST_ROOT")
    @flags.option("--debug", is_flag=True)
    @flags.version_option("1.2.3", prog_name="docker-mini")
    @flags.pass_context
    def cli(ctx, root, debug):
        """The top."""
        ctx.obj = {"root": root}

    @cli.command()
    @flags.option("-a", "--all", "all_", is_flag=True, help="All of them.")
    @flags.option("-q", "--quiet", is_flag=True)
    @flags.option("-n", "--last", type=int, default=-1, show_default=True)
    @flags.pass_context
    def ps(ctx, all_, quiet, last):
        """List containers. More words."""
        return ctx.obj, all_, quiet, last

    @cli.group()
    def network():
        """Networks."""

    @network.command("ls")
    @flags.argument("names", metavar="NAME...", nargs=-1, required=True)
    @flags.pass_context
    def ls(ctx, names):
        """List networks."""
        return ctx.command_path, ctx.find_root().params, names

    cli.commands["run"] = make_run()
    return cli


def parse(cmd, *args):
    ctx = cmd.make_context(cmd.name, list(args))
    return ctx.params


def invoke(group, *args):
    ctx = group.make_context("docker-mini", list(args))
    return group.invoke(ctx)


def usage_error(cmd, *args) -> str:
    with pytest.raises(flags.UsageError) as e:
        if isinstance(cmd, flags.Group):
            invoke(cmd, *args)
        else:
            parse(cmd, *args)
    return e.value.message


# ------------------------------------------------------------------------------ values


def test_long_options_take_the_next_word_or_an_equals_value():
    p = parse(make_run(), "--name", "web", "--network=none", "img")
    assert (p["name"], p["network"], p["image"]) == ("web", "none", "img")


def test_defaults_when_absent():
    p = parse(make_run(), "img")
    assert p["network"] == "bridge" and p["env"] == () and p["detach"] is False
    assert p["sig_proxy"] is True and p["name"] is None and p["command"] == ()


def test_alias_long_name():
    assert parse(make_run(), "--net", "host", "img")["network"] == "host"


def test_boolean_flags_bare_or_with_a_value():
    assert parse(make_run(), "--rm", "img")["auto_remove"] is True
    assert parse(make_run(), "--rm=false", "img")["auto_remove"] is False
    assert parse(make_run(), "--rm=true", "img")["auto_remove"] is True
    assert parse(make_run(), "-d=false", "img")["detach"] is False


def test_negatable_flag():
    assert parse(make_run(), "--no-sig-proxy", "img")["sig_proxy"] is False
    assert parse(make_run(), "--sig-proxy=false", "img")["sig_proxy"] is False
    assert parse(make_run(), "--no-sig-proxy=false", "img")["sig_proxy"] is True


def test_short_options_with_attached_spaced_or_equals_value():
    assert parse(make_run(), "-e", "A=1", "-eB=2", "-e=C=3", "img")["env"] == ("A=1", "B=2", "C=3")


def test_clusters_of_short_flags():
    p = parse(make_run(), "-itd", "img")
    assert p["interactive"] and p["tty"] and p["detach"]


def test_last_flag_of_a_cluster_takes_the_rest_or_the_next_word():
    p = parse(make_run(), "-dp", "80:80", "img")
    assert p["detach"] and p["ports"] == ("80:80",)
    p = parse(make_run(), "-dp8080:80", "img")
    assert p["detach"] and p["ports"] == ("8080:80",)
    assert parse(make_run(), "-p8080:80", "img")["ports"] == ("8080:80",)


def test_multiple_accumulates_in_order_and_a_single_option_keeps_the_last():
    p = parse(make_run(), "-e", "A", "--env", "B", "-e", "C", "--name", "x", "--name", "y", "img")
    assert p["env"] == ("A", "B", "C") and p["name"] == "y"


def test_a_value_that_looks_like_a_flag_is_still_a_value():
    assert parse(make_run(), "--stop-timeout", "-1", "img")["stop_timeout"] == -1
    assert parse(make_run(), "--name", "--rm", "img")["name"] == "--rm"


def test_typed_values():
    p = parse(make_run(), "--stop-timeout", "30", "--cpus", "1.5", "--format", "json", "img")
    assert (p["stop_timeout"], p["cpus"], p["fmt"]) == (30, 1.5, "json")


# ------------------------------------------------------------------------------ positionals


def test_interspersed_false_stops_at_the_image():
    p = parse(make_run(), "--rm", "img", "sh", "-c", "ls -l", "--name", "x")
    assert p["image"] == "img" and p["command"] == ("sh", "-c", "ls -l", "--name", "x")
    assert p["name"] is None


def test_double_dash_ends_options():
    p = parse(make_run(), "--", "-weird-image", "-x")
    assert p["image"] == "-weird-image" and p["command"] == ("-x",)


def test_interspersed_command_takes_options_after_positionals():
    p = invoke(make_group(), "network", "ls", "a", "b")
    assert p[2] == ("a", "b")
    _, all_, quiet, last = invoke(make_group(), "ps", "-aq", "-n", "3")
    assert (all_, quiet, last) == (True, True, 3)


def test_a_lone_dash_is_a_positional():
    assert parse(make_run(), "img", "-")["command"] == ("-",)


# ------------------------------------------------------------------------------ groups


def test_group_options_come_before_the_subcommand_and_reach_it():
    obj, all_, quiet, last = invoke(make_group(), "--root", "/r", "ps", "-a")
    assert obj == {"root": "/r"} and all_ and not quiet and last == -1


def test_group_option_from_the_environment(monkeypatch):
    monkeypatch.setenv("DM_TEST_ROOT", "/from-env")
    assert invoke(make_group(), "ps")[0] == {"root": "/from-env"}
    assert invoke(make_group(), "--root", "/given", "ps")[0] == {"root": "/given"}


def test_nested_group_context():
    path, root_params, names = invoke(make_group(), "--debug", "network", "ls", "n1")
    assert path == "docker-mini network ls" and root_params["debug"] is True and names == ("n1",)


def test_a_group_option_after_the_subcommand_is_the_subcommand_s_problem():
    assert usage_error(make_group(), "ps", "--root", "/x") == "unknown flag: --root"


def test_version_option(capsys):
    with pytest.raises(flags.Exit) as e:
        make_group().make_context("docker-mini", ["--version", "ps"])
    assert e.value.exit_code == 0 and capsys.readouterr().out == "docker-mini, version 1.2.3\n"


def test_unknown_command():
    assert usage_error(make_group(), "nope") == "'nope' is not a docker-mini command."


def test_ctx_exit_raises_exit_with_the_code():
    ctx = make_run().make_context("run", ["img"])
    with pytest.raises(flags.Exit) as e:
        ctx.exit(3)
    assert e.value.exit_code == 3


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("args, message", [
    (["--foo", "img"], "unknown flag: --foo"),
    (["-x", "img"], "unknown shorthand flag: 'x' in -x"),
    (["-dx", "img"], "unknown shorthand flag: 'x' in -dx"),
    (["img", "--name"], None),                                   # the container's argument
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: 'e' in -e"),
    (["--stop-timeout", "abc", "img"],
     'invalid argument "abc" for "--stop-timeout" flag: expected an integer'),
    (["--cpus", "x", "img"], 'invalid argument "x" for "--cpus" flag: expected a number'),
    (["--rm=maybe", "img"], 'invalid argument "maybe" for "--rm" flag: expected true or false'),
    (["--format", "yaml", "img"], 'invalid argument "yaml" for "--format" flag: must be one of: table, json'),
    ([], '"run" requires at least 1 argument.'),
])
def test_usage_errors_use_docker_wording(args, message):
    if message is None:
        assert parse(make_run(), *args)["command"] == ("--name",)
    else:
        assert usage_error(make_run(), *args) == message


def test_argument_counts():
    assert usage_error(make_group(), "network", "ls") == '"docker-mini network ls" requires at least 1 argument.'

    @flags.command("logs")
    @flags.argument("container")
    def logs(container):
        return container
    assert usage_error(logs) == '"logs" requires exactly 1 argument.'
    assert usage_error(logs, "a", "b") == '"logs" requires exactly 1 argument.'

    @flags.command("images")
    @flags.argument("repository", required=False)
    def images(repository):
        return repository
    assert parse(images)["repository"] is None
    assert usage_error(images, "a", "b") == '"images" accepts at most 1 argument.'


def test_required_option():
    @flags.command("plan")
    @flags.option("-f", "--file", "spec", required=True)
    def plan(spec):
        return spec
    assert usage_error(plan) == 'required flag(s) "file" not set'
    assert parse(plan, "-f", "x.yaml")["spec"] == "x.yaml"


def test_float_range_and_path(tmp_path):
    @flags.command("watch")
    @flags.argument("directory", type=flags.Path(exists=True))
    @flags.option("--interval", type=flags.FloatRange(0.2, None), default=10.0)
    @flags.option("--env-file", type=flags.Path(dir_okay=False))
    def watch(directory, interval, env_file):
        return directory
    assert parse(watch, str(tmp_path), "--interval", "0.5")["interval"] == 0.5
    assert usage_error(watch, str(tmp_path), "--interval", "0.1") == \
        'invalid argument "0.1" for "--interval" flag: must be at least 0.2'
    assert usage_error(watch, str(tmp_path / "nope")) == \
        f'invalid argument "{tmp_path / "nope"}" for "DIRECTORY": no such file or directory'
    assert usage_error(watch, str(tmp_path), "--env-file", str(tmp_path)).endswith("is a directory")


def test_usage_error_shows_the_help_hint(capsys):
    cli = make_group()
    with pytest.raises(flags.UsageError) as e:
        invoke(cli, "ps", "--nope")
    e.value.show()
    assert capsys.readouterr().err == "docker-mini: unknown flag: --nope\nSee 'docker-mini ps --help'.\n"


def test_a_flag_declared_twice_is_a_programming_error():
    with pytest.raises(ValueError):
        @flags.command("x")
        @flags.option("-a", "--all", is_flag=True)
        @flags.option("-a", "--any", is_flag=True)
        def x(all, any):
            pass


# ------------------------------------------------------------------------------ help


def help_of(group, *args) -> str:
    with pytest.raises(flags.Exit) as e:
        invoke(group, *args)
    assert e.value.exit_code == 0
    return e.value


def test_command_help(capsys):
    help_of(make_group(), "run", "--help")
    out = capsys.readouterr().out
    assert out.startswith("Usage:  docker-mini run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                          "Create and run a container.\n\nSecond paragraph.\n\nOptions:\n")
    lines = out.splitlines()
    env = next(ln for ln in lines if "--env" in ln)
    name = next(ln for ln in lines if "--name" in ln)
    assert env.startswith("  -e, --env list ") and env.endswith("Set environment variables.")
    assert name == "      --name string"
    assert env.index("Set") == next(ln for ln in lines if "--detach" in ln).index("Run in")   # aligned
    assert any(ln.endswith('Network. (default "bridge")') for ln in lines)
    assert "--secret" not in out
    assert "-h, --help" not in out and "      --help" in out      # -h is --hostname here


def test_h_is_help_where_the_command_does_not_use_it(capsys):
    help_of(make_group(), "ps", "-h")
    out = capsys.readouterr().out
    assert out.startswith("Usage:  docker-mini ps [OPTIONS]\n\nList containers. More words.\n")
    assert "  -n, --last int   (default -1)" in out


def test_help_is_an_argument_after_the_image():
    assert parse(make_run(), "img", "--help")["command"] == ("--help",)


def test_group_help_lists_commands(capsys):
    help_of(make_group(), "--help")
    out = capsys.readouterr().out
    assert out.startswith("Usage:  docker-mini [OPTIONS] COMMAND\n\nThe top.\n")
    assert "\nCommands:\n  network   Networks.\n  ps        List containers.\n  run       Create and run a container.\n" in out
    help_of(make_group(), "network")          # a group without a subcommand shows its help
    assert "  ls   List networks." in capsys.readouterr().out


# ------------------------------------------------------------------------------ through the real CLI


def test_cli_help(dm):
    top = dm("--help")
    assert top.stdout.startswith("Usage:  docker-mini [OPTIONS] COMMAND")
    for name in ("run", "ps", "pull", "network", "system", "apply"):
        assert f"\n  {name} " in top.stdout
    assert "container-cleanup" not in top.stdout
    run = dm("run", "--help")
    assert run.stdout.startswith("Usage:  docker-mini run [OPTIONS] IMAGE [COMMAND] [ARG...]\n")
    assert "  -e, --env list " in run.stdout and "  -h, --hostname string " in run.stdout


def test_cli_unknown_flag_exit_codes(dm):
    run = dm("run", "--foo", "img", check=False)
    assert run.returncode == 125
    assert run.stderr == "docker-mini: unknown flag: --foo\nSee 'docker-mini run --help'.\n"
    ps = dm("ps", "--foo", check=False)
    assert ps.returncode == 2
    assert ps.stderr == "docker-mini: unknown flag: --foo\nSee 'docker-mini ps --help'.\n"
    top = dm("--nope", "ps", check=False)
    assert top.returncode == 2 and "unknown flag: --nope" in top.stderr


def test_cli_short_flag_cluster_reaches_the_command(dmc, busybox):
    cid = dmc("create", "--network", "none", busybox, "true").stdout.strip()
    assert dmc("ps", "-q").stdout == ""
    assert dmc("ps", "-aq").stdout == cid[:12] + "\n"
    assert dmc("ps", "-qa", "--no-trunc").stdout == cid + "\n"


def test_cli_run_passes_the_command_line_through(dmc, busybox):
    p = dmc("run", "--rm", "--network", "none", busybox, "sh", "-c", "echo a b; echo $0 $1", "-x", "--rm")
    assert p.stdout == "a b\n-x --rm\n"


def test_cli_version_does_not_need_click():
    out = subprocess.run([sys.executable, "-c", "import sys, reconciler.cli.flags, reconciler.cli;"
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                          "('click', 're', 'typing', 'dataclasses', 'inspect', 'enum', 'gettext')))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


def test_every_command_module_loads_without_click(root, config_file):
    """`--help` imports every command module; with click made unimportable it still works."""
    code = ("import sys; sys.modules['click'] = None; from reconciler.cli import main; "
            f"main(['--root', {str(root)!r}, '--config', {str(config_file)!r}, '--help'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "\n  watch " in proc.stdout and "\n  exec " in proc.stdout
