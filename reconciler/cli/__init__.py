"""L3: the command line, on click. The only place where errors become exit codes (cli.common).

Subcommands live in sibling modules and are imported only when invoked (LazyGroup), so
`docker-mini ps` never pays for requests or pyroute2, and `--help` lists them from the table
below without importing any.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from reconciler import __version__

# command name -> (module, attribute, short help). The short help is the first sentence of the
# command's docstring (tests/unit/test_cli_commands.py keeps the two equal).
COMMANDS: dict[str, tuple[str, str, str]] = {
    # images
    "pull": ("reconciler.cli.images", "pull", "Pull an image from a registry."),
    "images": ("reconciler.cli.images", "images", "List images: REPOSITORY TAG IMAGE ID CREATED SIZE."),
    "rmi": ("reconciler.cli.images", "rmi", "Remove images (their layers too, unless another image shares them)."),
    "login": ("reconciler.cli.images", "login", "Log in to a registry (credentials stored 0600 under the root)."),
    "logout": ("reconciler.cli.images", "logout", "Forget the credentials stored for a registry."),
    # containers
    "create": ("reconciler.cli.run", "create", "Create a new container (prints its id)."),
    "start": ("reconciler.cli.lifecycle", "start", "Start one or more stopped containers."),
    "run": ("reconciler.cli.run", "run", "Create and start a container."),
    "stop": ("reconciler.cli.lifecycle", "stop", "Stop one or more running containers."),
    "kill": ("reconciler.cli.lifecycle", "kill", "Kill one or more running containers."),
    "restart": ("reconciler.cli.lifecycle", "restart", "Restart one or more containers."),
    "rm": ("reconciler.cli.lifecycle", "rm", "Remove one or more containers."),
    "ps": ("reconciler.cli.ps", "ps", "List containers."),
    "logs": ("reconciler.cli.logs", "logs", "Fetch the logs of a container."),
    "wait": ("reconciler.cli.lifecycle", "wait", "Block until one or more containers stop, then print their exit codes."),
    "container-cleanup": ("reconciler.cli.lifecycle", "cleanup", ""),   # hidden: run by conmon at exit
    "inspect": ("reconciler.cli.inspect", "inspect", "Return low-level information on containers or images."),
    "healthcheck": ("reconciler.cli.health", "healthcheck", "Run a container's healthcheck once now (exit 0 when healthy, 1 when not)."),
    # interactive
    "attach": ("reconciler.cli.interactive", "attach", "Attach your terminal to a running container's input and output."),
    "exec": ("reconciler.cli.interactive", "exec_", "Run a command in a running container."),
    # networking
    "network": ("reconciler.cli.network", "network", "Manage networks: user-defined bridge networks and the default one."),
    "port": ("reconciler.cli.network", "port", "List port mappings of a container."),
    "volume": ("reconciler.cli.volume", "volume", "Manage named volumes (<root>/volumes/NAME/_data)."),
    # declarative stacks
    "plan": ("reconciler.cli.stacks", "plan", "Show what `apply` would do, and why (exit 2 when changes are pending)."),
    "apply": ("reconciler.cli.stacks", "apply", "Converge the host to a stack spec: pull, create, start, update, stop, remove."),
    "down": ("reconciler.cli.stacks", "down", "Stop and remove a stack's containers (its images too with --rmi)."),
    "watch": ("reconciler.cli.stacks", "watch", "Keep the host converged to the spec in DIRECTORY."),
    # housekeeping
    "system": ("reconciler.cli.system", "system", "Housekeeping: find what a crash left behind; remove what is unused."),
}
HIDDEN = frozenset({"container-cleanup"})

COMPLETE_VAR = "_DOCKER_MINI_COMPLETE"


class LazyGroup(click.Group):
    """A group whose commands are named in a table and imported only when one runs (click's
    "lazily loading subcommands" pattern); --help reads the short help from the table."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attribute, _ = self.lazy[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module}.{attribute} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0]
        if self.get_command(ctx, name) is None and not ctx.resilient_parsing and not name.startswith("-"):
            visible = [n for n in self.list_commands(ctx) if n not in HIDDEN]
            raise click.exceptions.NoSuchCommand(
                name, message=f"'{name}' is not a {ctx.command_path} command.", possibilities=visible, ctx=ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in HIDDEN:
                continue
            if name in self.lazy:
                rows.append((name, self.lazy[name][2]))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


CONTEXT_SETTINGS = {
    # -h is --help, except on the commands where Docker gives -h another meaning (run/create
    # --hostname): click drops a help name that a command's own option uses.
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}


@click.group("docker-mini", cls=LazyGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.option("--root", envvar="DOCKER_MINI_ROOT", metavar="DIR",
              help="State directory [env DOCKER_MINI_ROOT; default /var/lib/docker-mini].")
@click.option("--config", "config_file", metavar="FILE",
              help="Configuration file [default /etc/docker-mini/configs/constants.json].")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log messages of this level and above to stderr.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, "--version", "-v", prog_name="docker-mini",
                      message="%(prog)s version %(version)s")
@click.pass_context
def cli(ctx: click.Context, root, config_file, log_level, debug):
    """docker-mini: a daemonless, declarative container engine."""
    from reconciler import log
    from reconciler.cli.common import Settings

    log.configure(log_level)
    ctx.obj = Settings(root=root, config_file=config_file)
    ctx.obj.load_config()  # a bad configuration is reported before any command does anything


@cli.command()
def version():
    """Show docker-mini's version."""
    click.echo(f"docker-mini {__version__} (python {sys.version.split()[0]})")


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script.

    bash: `source <(docker-mini completion bash)`; zsh likewise; fish: `docker-mini completion fish | source`."""
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)(cli, {}, "docker-mini", COMPLETE_VAR)
    click.echo(complete.source())


def main(argv: list[str] | None = None) -> None:
    from reconciler.cli.common import run_cli

    instruction = os.environ.get(COMPLETE_VAR)
    if argv is None and instruction:     # the shell asks for completions (`completion` installs this)
        from click.shell_completion import shell_complete

        sys.exit(shell_complete(cli, {}, "docker-mini", COMPLETE_VAR, instruction))
    sys.exit(run_cli(cli, argv))
