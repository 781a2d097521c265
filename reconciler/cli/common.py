"""Shared CLI plumbing: settings, engine construction, and the one place errors become exit codes."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import click

from reconciler.core import errors
from reconciler.core.config import DEFAULT_CONFIG_PATH, Config, parse_config

# Exit codes. Docker's conventions: 125 a usage error (on every command) or, for run/create/exec,
# the engine failed; 126 the command cannot be invoked, 127 the command was not found; for
# run/exec otherwise the container's own exit code. 1 any other failure (an unknown command
# too), 2 only `plan`'s and `--dry-run`'s "changes pending" (cli.stacks), 130 interrupted.
EXIT_ERROR = 1
EXIT_USAGE = 125
EXIT_ENGINE = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
EXIT_INTERRUPTED = 130

# Commands whose errors are reported as Docker reports `run` errors (125 and friends).
RUN_LIKE = frozenset({"run", "create", "exec"})


@dataclass
class Settings:
    """The group options every command sees."""

    root: str | None = None
    config_file: str | None = None
    _config: Config | None = field(default=None, repr=False)
    _engine: object = field(default=None, repr=False)

    def load_config(self) -> Config:
        if self._config is None:
            self._config = self._read_config()
        return self._config

    def _read_config(self) -> Config:
        path = self.config_file or DEFAULT_CONFIG_PATH
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            if self.config_file:
                raise errors.ConfigError(f"{path}: configuration file not found") from None
            return parse_config(None)
        except OSError as e:
            raise errors.ConfigError(f"{path}: cannot read: {e.strerror}") from None
        return parse_config(text, source=str(path))

    def engine(self):
        if self._engine is None:
            from reconciler.engine.engine import Engine

            config = self.load_config()
            self._engine = Engine(self.root or config.root, config)
        return self._engine


def parse_labels(items) -> dict[str, str]:
    """--label KEY=VALUE options (network create, volume create) as a dict."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise errors.InvalidArgument(f"--label {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def engine_from(ctx: click.Context):
    return ctx.find_object(Settings).engine()


def exit_code_for(err: BaseException, command: str | None) -> int:
    """The exit code of an error that ended `command` (a usage error is handled before)."""
    if command in RUN_LIKE:
        if isinstance(err, errors.CommandNotFound):
            return EXIT_NOT_FOUND
        if isinstance(err, errors.CommandNotExecutable):
            return EXIT_NOT_EXECUTABLE
        return EXIT_ENGINE
    return EXIT_ERROR


def show_usage_error(e: click.UsageError) -> None:
    """Docker's shape: the message, then where to read the usage."""
    path = e.ctx.command_path if e.ctx is not None else "docker-mini"
    click.echo(f"docker-mini: {e.format_message()}\nSee '{path} --help'.", err=True)


def oserror_text(e: OSError, command: str | None) -> str:
    what = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None) or command or "docker-mini"
    return f"{what}: {e.strerror or e}"


def run_cli(group: click.Group, argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default sys.argv[1:]) and answer its exit code. No exception
    leaves as a traceback unless --debug was given: every failure is one `docker-mini: ...` line."""
    args = list(sys.argv[1:] if argv is None else argv)
    ctx: click.Context | None = None
    try:
        ctx = group.make_context("docker-mini", args)
        with ctx:
            group.invoke(ctx)
        sys.stdout.flush()            # a reader that left shows here, not at interpreter exit
        return 0
    except click.exceptions.Exit as e:
        sys.stdout.flush()
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError as e:     # `docker-mini`, `docker-mini network`
        click.echo(e.ctx.get_help())
        return 0
    except click.exceptions.NoSuchCommand as e:
        show_usage_error(e)
        return EXIT_ERROR
    except click.UsageError as e:
        show_usage_error(e)
        return EXIT_USAGE
    except click.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `docker-mini ps | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - the top of the program: every failure gets a message
        command = ctx.invoked_subcommand if ctx is not None else None
        _report(e, command, debug=_debug_wanted(ctx, args))
        return exit_code_for(e, command)


def _debug_wanted(ctx: click.Context | None, args: list[str]) -> bool:
    if ctx is not None:
        return bool(ctx.params.get("debug"))
    return "--debug" in args


def error_text(e: BaseException, command: str | None, debug: bool = False) -> str:
    """The one line (after `docker-mini: error: `) that reports an error to the user."""
    if isinstance(e, errors.DockerMiniError):
        return str(e)
    if isinstance(e, click.ClickException):
        return e.format_message()
    if isinstance(e, OSError):
        return oserror_text(e, command)
    text = f"internal error: {type(e).__name__}: {e}"
    return text if debug else text + " (run with --debug for the traceback)"


def _report(e: Exception, command: str | None, debug: bool) -> None:
    if debug:
        import traceback
        traceback.print_exception(e)
    click.echo(f"docker-mini: error: {error_text(e, command, debug)}", err=True)
