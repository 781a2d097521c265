"""`docker-mini attach` and `docker-mini exec`, and the attached sessions of `run -i/-t` and
`start -a[i]` (run_session, start_session: called by cli.run and cli.lifecycle)."""

from __future__ import annotations

import os
import sys

import click

from reconciler.cli.common import engine_from
from reconciler.core import errors
from reconciler.core.detach_keys import DEFAULT_DETACH_KEYS, parse_detach_keys

DETACH_KEYS_HELP = ('Keys that detach and leave the container running, Docker\'s syntax '
                    '("ctrl-p,ctrl-q", "ctrl-a", "a,b").')


def require_tty_input(interactive: bool, tty: bool) -> None:
    """Docker refuses -it when its input is not a terminal (the raw mode would make no sense)."""
    if interactive and tty and not os.isatty(0):
        raise errors.InvalidArgument("the input device is not a TTY",
                                     hint="drop -t to pipe input: ... -i IMAGE COMMAND < file")


def session_code(outcome) -> int:
    """A detached session exits 0; otherwise the process's own exit code."""
    return 0 if outcome.detached else int(outcome.exit_code or 0)


def exit_with(ctx: click.Context, outcome) -> None:
    sys.stdout.flush()
    code = session_code(outcome)
    if code:
        ctx.exit(code)


def stdio_for(attach_stdin: bool):
    from reconciler.engine.interactive import Stdio
    sys.stdout.flush()
    sys.stderr.flush()
    return Stdio(stdin=0 if attach_stdin else None, stdout=1, stderr=2)


def run_session(ctx: click.Context, engine, rec, *, auto_remove: bool = False) -> int:
    """`run -i/-t` in the foreground (called by cli.run.run once the container exists):
    start it attached, the user's stdin going in when -i. The exit code, 0 when detached."""
    from reconciler.engine import interactive

    opts = rec.options
    detach_keys = ctx.params.get("detach_keys") or DEFAULT_DETACH_KEYS
    try:                      # Docker checks these before creating; the container goes again
        require_tty_input(opts.interactive, opts.tty)
        parse_detach_keys(detach_keys)
    except errors.DockerMiniError:
        from reconciler.engine import containers
        containers.remove(engine, rec.id, force=True)
        raise
    outcome = interactive.start_attached(engine, rec.id, stdin=True, detach_keys=detach_keys,
                                         sig_proxy=ctx.params.get("sig_proxy", True),
                                         stdio=stdio_for(opts.interactive),
                                         auto_remove=auto_remove)
    return session_code(outcome)


def start_session(ctx: click.Context, engine, rec) -> int:
    """`start -a[i]` of a container created with -i or -t (called by cli.lifecycle.start)."""
    from reconciler.engine import interactive

    opts = rec.options
    want_stdin = bool(ctx.params.get("interactive")) and opts.interactive
    require_tty_input(want_stdin, opts.tty)
    outcome = interactive.start_attached(engine, rec.id, stdin=want_stdin,
                                         detach_keys=ctx.params.get("detach_keys") or DEFAULT_DETACH_KEYS,
                                         sig_proxy=True, stdio=stdio_for(want_stdin))
    return session_code(outcome)


@click.command("attach", context_settings={"allow_interspersed_args": False})
@click.option("--detach-keys", default=DEFAULT_DETACH_KEYS, show_default=True, help=DETACH_KEYS_HELP)
@click.option("--no-stdin", is_flag=True, help="Do not attach stdin.")
@click.option("--sig-proxy/--no-sig-proxy", default=True, show_default=True,
              help="Forward the signals the CLI receives to the container (not with a terminal).")
@click.argument("container")
@click.pass_context
def attach(ctx, detach_keys, no_stdin, sig_proxy, container):
    """Attach your terminal to a running container's input and output.

    Detach with the detach keys (default Ctrl-P Ctrl-Q): the container keeps running.
    Exits with the container's exit code when it ends."""
    from reconciler.engine import interactive

    engine = engine_from(ctx)
    outcome = interactive.attach(engine, container, stdin=not no_stdin, detach_keys=detach_keys,
                                 sig_proxy=sig_proxy, stdio=stdio_for(not no_stdin))
    exit_with(ctx, outcome)


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin open and send it to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal (sets TERM=xterm).")
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE",
              help="Set an environment variable (KEY alone: take it from your environment).")
@click.option("-w", "--workdir", metavar="DIR", help="Working directory inside the container.")
@click.option("-u", "--user", metavar="USER[:GROUP]", help="User name or uid (and group) to run as.")
@click.option("--detach-keys", default=DEFAULT_DETACH_KEYS, show_default=True, help=DETACH_KEYS_HELP)
@click.option("-f", "--file", "spec", metavar="FILE|DIR", help="CONTAINER is a service of the stack in this spec.")
@click.option("--stack", metavar="NAME", help="CONTAINER is a service of this stack.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="COMMAND [ARG...]")
@click.pass_context
def exec_(ctx, interactive, tty, detach, env, workdir, user, detach_keys, spec, stack, container, command):
    """Run a command in a running container.

    It joins the container's namespaces and cgroup and gets its environment. Exits with the
    command's exit code (126: cannot be executed, 127: not found)."""
    from reconciler.engine import interactive as engine_interactive

    if not detach:
        require_tty_input(interactive, tty)
    engine = engine_from(ctx)
    if spec or stack:
        from reconciler.cli.stacks import service_container_name
        container = service_container_name(ctx, stack, spec, container)
    outcome = engine_interactive.exec_(
        engine, container, list(command), interactive=interactive, tty=tty, detach=detach,
        env=list(env), workdir=workdir, user=user, detach_keys=detach_keys,
        stdio=stdio_for(interactive and not detach))
    exit_with(ctx, outcome)
