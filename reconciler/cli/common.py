"""Shared CLI plumbing: settings, engine construction, error -> exit code."""

from __future__ import annotations

import os
import sys

from reconciler.cli import flags
from reconciler.core import errors
from reconciler.core.config import DEFAULT_CONFIG_PATH, Config, parse_config

# Exit codes. Docker's conventions for `run`: 125 the engine failed, 126 the command cannot be
# invoked, 127 the command was not found; otherwise the container's own exit code.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ENGINE = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

# Commands whose errors are reported as Docker reports `run` errors (125 and friends).
RUN_LIKE = {"run", "create", "exec"}


class Settings:
    """The group options every command sees (a plain class: dataclasses costs ~10 ms to import)."""

    def __init__(self, root: str | None = None, config_file: str | None = None):
        self.root = root
        self.config_file = config_file
        self._config: Config | None = None
        self._engine = None

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
            from reconciler.engine.context import Engine

            config = self.load_config()
            self._engine = Engine(self.root or config.root, config)
        return self._engine


def engine_from(ctx: flags.Context):
    return ctx.find_object(Settings).engine()


def exit_code_for(err: errors.DockerMiniError, command: str | None) -> int:
    if command in RUN_LIKE:
        if isinstance(err, errors.CommandNotFound):
            return EXIT_NOT_FOUND
        if isinstance(err, errors.CommandNotExecutable):
            return EXIT_NOT_EXECUTABLE
        return EXIT_ENGINE
    if isinstance(err, (errors.InvalidArgument, errors.SpecError, errors.ConfigError)):
        return EXIT_USAGE
    return EXIT_ERROR


def run_cli(group: flags.Group, argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        ctx = group.make_context("docker-mini", argv)
    except flags.Exit as e:
        return e.exit_code
    except flags.UsageError as e:
        e.show()
        return EXIT_ENGINE if _first_command(group, argv) in RUN_LIKE else EXIT_USAGE
    command = ctx.invoked_subcommand
    debug = bool(ctx.params.get("debug"))
    try:
        group.invoke(ctx)
        return 0
    except flags.Exit as e:
        return e.exit_code
    except flags.Abort:
        flags.echo("Aborted.", err=True)
        return 130
    except flags.UsageError as e:
        e.show()
        return EXIT_ENGINE if command in RUN_LIKE else e.exit_code
    except errors.DockerMiniError as e:
        if debug:
            import traceback
            traceback.print_exc()
        flags.echo(f"docker-mini: error: {e}", err=True)
        return exit_code_for(e, command)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `docker-mini ps | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def exit_now(code: int) -> None:
    """End the program without the interpreter's teardown, which frees every module and object
    one by one: 10-20 ms on this kind of host, more than `ps` itself takes. What that teardown
    does that a user could see still happens first: the atexit handlers (logging, tempfile
    finalizers) run and stdout/stderr are flushed. Returns (for a normal exit) when another
    thread is alive, whose end the interpreter would wait for, when a profiler or tracer is on
    (python -m cProfile writes its report after the program returns), or when the flush fails
    (a reader that left: keep Python's own handling)."""
    import atexit
    threading = sys.modules.get("threading")     # never loaded: no other thread (~1.5 ms to load)
    others = threading is not None and threading.active_count() > 1
    if not isinstance(code, int) or others or sys.gettrace() or sys.getprofile():
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        atexit._clear()           # they ran already
        return
    os._exit(code & 0xFF)


def _first_command(group: flags.Group, argv: list[str]) -> str | None:
    takes_value = {"--" + name for name, (opt, _) in group.long.items() if not opt.is_flag}
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in takes_value:
            skip = True
            continue
        if not a.startswith("-"):
            return a
    return None
