"""L3: the command line (parsed by cli.flags). The only place where errors become exit codes.

Subcommands live in sibling modules and are imported only when invoked, so `docker-mini ps`
never pays for requests or pyroute2.
"""

from __future__ import annotations

import sys

from reconciler.cli import flags

from reconciler import __version__

# command name -> (module, attribute)
COMMANDS: dict[str, tuple[str, str]] = {
    # images
    "pull": ("reconciler.cli.images", "pull"),
    "images": ("reconciler.cli.images", "images"),
    "rmi": ("reconciler.cli.images", "rmi"),
    "login": ("reconciler.cli.images", "login"),
    "logout": ("reconciler.cli.images", "logout"),
    # containers
    "create": ("reconciler.cli.containers", "create"),
    "start": ("reconciler.cli.containers", "start"),
    "run": ("reconciler.cli.containers", "run"),
    "stop": ("reconciler.cli.containers", "stop"),
    "kill": ("reconciler.cli.containers", "kill"),
    "restart": ("reconciler.cli.containers", "restart"),
    "rm": ("reconciler.cli.containers", "rm"),
    "ps": ("reconciler.cli.containers", "ps"),
    "logs": ("reconciler.cli.containers", "logs"),
    "wait": ("reconciler.cli.containers", "wait"),
    "container-cleanup": ("reconciler.cli.containers", "cleanup"),  # run by conmon at exit
    "inspect": ("reconciler.cli.inspect", "inspect"),
    # interactive
    "attach": ("reconciler.cli.interactive", "attach"),
    "exec": ("reconciler.cli.interactive", "exec_"),
    # networking
    "network": ("reconciler.cli.network", "network"),
    # declarative stacks
    "plan": ("reconciler.cli.stacks", "plan"),
    "apply": ("reconciler.cli.stacks", "apply"),
    "down": ("reconciler.cli.stacks", "down"),
    "watch": ("reconciler.cli.stacks", "watch"),
    # housekeeping
    "system": ("reconciler.cli.system", "system"),
}


@flags.group("docker-mini", lazy=COMMANDS)
@flags.option("--root", envvar="DOCKER_MINI_ROOT", metavar="DIR",
              help="State directory [env DOCKER_MINI_ROOT; default /var/lib/docker-mini].")
@flags.option("--config", "config_file", metavar="FILE",
              help="Configuration file [default /etc/docker-mini/configs/constants.json].")
@flags.option("--log-level", default="warning", show_default=True,
              type=flags.Choice(["debug", "info", "warning", "error"]))
@flags.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@flags.version_option(__version__, prog_name="docker-mini")
@flags.pass_context
def cli(ctx, root, config_file, log_level, debug):
    """docker-mini: a daemonless, declarative container engine."""
    from reconciler.cli.common import Settings

    # Logging is configured by the commands that log (watch); the rest never pay for structlog.
    ctx.obj = Settings(root=root, config_file=config_file)
    ctx.obj.load_config()  # a bad configuration is reported before any command does anything


def main(argv: list[str] | None = None) -> None:
    import gc
    # The cyclic collector's default (a young collection every 700 net allocations) ran ~15
    # times while a command loaded its modules and did its work: 1-5 ms of every `run` here.
    # Those make few reference cycles and refcounting frees the rest: collect less often, not
    # never (`watch` and long attaches run for days).
    gc.set_threshold(50_000, 20, 20)
    from reconciler.cli.common import exit_now, run_cli

    code = run_cli(cli, argv)
    if argv is None:
        exit_now(code)        # the program itself (not a caller passing argv): skip the teardown
    sys.exit(code)


@cli.command()
def version():
    """Show docker-mini's version."""
    flags.echo(f"docker-mini {__version__} (python {sys.version.split()[0]})")
