"""Docker's command-line conventions on docker-mini's real commands (parsed, not run): clusters,
repeated flags, `run IMAGE CMD...`, `--`, -h. No root: nothing here reaches the engine."""

from __future__ import annotations

import click
import pytest

from reconciler.cli import cli


def parse(*args: str) -> dict:
    """The parameters `docker-mini ARGS` hands its command (the group's own callback not run)."""
    name, *rest = args
    group_ctx = click.Context(cli, info_name="docker-mini", **cli.context_settings)
    return cli.get_command(group_ctx, name).make_context(name, rest, parent=group_ctx).params


def usage_error(*args: str) -> click.UsageError:
    with pytest.raises(click.UsageError) as e:
        parse(*args)
    return e.value


def test_long_options_take_the_next_word_or_an_equals_value():
    p = parse("run", "--name", "web", "--network=none", "img")
    assert (p["name"], p["network"], p["image"]) == ("web", "none", "img")


def test_defaults_when_absent():
    p = parse("run", "img")
    assert p["network"] == "bridge" and p["env"] == () and p["detach"] is False
    assert p["sig_proxy"] is True and p["name"] is None and p["command"] == ()


def test_alias_long_name():
    assert parse("run", "--net", "host", "img")["network"] == "host"


def test_negatable_flag():
    assert parse("run", "--no-sig-proxy", "img")["sig_proxy"] is False


def test_clusters_of_short_flags():
    p = parse("run", "-itd", "img")
    assert p["interactive"] and p["tty"] and p["detach"]
    p = parse("ps", "-aq")
    assert p["all_"] and p["quiet"]


def test_last_flag_of_a_cluster_takes_the_rest_or_the_next_word():
    p = parse("run", "-dp", "80:80", "img")
    assert p["detach"] and p["ports"] == ("80:80",)
    p = parse("run", "-dp8080:80", "img")
    assert p["detach"] and p["ports"] == ("8080:80",)


def test_repeated_flags_accumulate_in_order_and_a_single_one_keeps_the_last():
    p = parse("run", "-e", "A", "--env", "B", "-e", "C", "-v", "/a:/a", "-v", "/b:/b:ro",
              "-p", "1:1", "-p", "2:2", "--name", "x", "--name", "y", "img")
    assert p["env"] == ("A", "B", "C") and p["volumes"] == ("/a:/a", "/b:/b:ro")
    assert p["ports"] == ("1:1", "2:2") and p["name"] == "y"


def test_a_value_that_looks_like_a_flag_is_still_a_value():
    assert parse("run", "--stop-timeout", "-1", "img")["stop_timeout"] == -1
    assert parse("run", "--name", "--rm", "img")["name"] == "--rm"


def test_options_end_at_the_image():
    p = parse("run", "--rm", "img", "sh", "-c", "ls -l", "--name", "x", "--help")
    assert p["image"] == "img" and p["command"] == ("sh", "-c", "ls -l", "--name", "x", "--help")
    assert p["name"] is None and p["auto_remove"]
    p = parse("exec", "-it", "box", "ls", "-l")
    assert (p["container"], p["command"], p["interactive"], p["tty"]) == ("box", ("ls", "-l"), True, True)


def test_double_dash_ends_options():
    p = parse("run", "--", "-weird-image", "-x")
    assert p["image"] == "-weird-image" and p["command"] == ("-x",)


def test_other_commands_take_options_after_positionals():
    p = parse("rm", "a", "-f", "b")
    assert p["containers_"] == ("a", "b") and p["force"]


def test_h_is_hostname_on_run_and_create():
    assert parse("run", "-h", "box", "img")["hostname"] == "box"
    assert parse("create", "-h", "box", "img")["hostname"] == "box"


def test_h_is_help_elsewhere(capsys):
    with pytest.raises(click.exceptions.Exit) as e:
        parse("ps", "-h")
    assert e.value.exit_code == 0
    assert capsys.readouterr().out.startswith("Usage: docker-mini ps [OPTIONS]")


@pytest.mark.parametrize("args, words", [
    (["run", "--foo", "img"], "--foo"),
    (["run", "-x", "img"], "-x"),
    (["run", "--name"], "--name"),
    (["run", "--stop-timeout", "abc", "img"], "abc"),
    (["run"], "IMAGE"),
    (["logs", "--stack"], "--stack"),      # no CONTAINER: a runtime usage error (it may be --stack)
    (["logs", "a", "b"], "unexpected extra argument"),
    (["inspect", "--type", "volume", "x"], "volume"),
    (["plan"], "--file"),
    (["watch", "/nonexistent-dir", "--interval", "1"], "/nonexistent-dir"),
    (["stop"], "CONTAINER"),
])
def test_usage_errors_name_what_is_wrong(args, words):
    assert words in usage_error(*args).format_message()
