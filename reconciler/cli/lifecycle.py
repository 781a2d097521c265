"""Lifecycle commands on named containers: start, stop, kill, restart, rm, wait, and the hidden
container-cleanup conmon runs at exit."""

from __future__ import annotations

import click

from reconciler.cli.attached import attacher, connect_attach, follow_and_wait
from reconciler.cli.common import engine_from
from reconciler.core import errors

containers_argument = click.argument("containers_", metavar="CONTAINER...", nargs=-1, required=True)
time_option = click.option("-t", "--time", "timeout", type=int, help="Seconds to wait for stop before killing it.")


def _each(ctx: click.Context, names, fn, echo: bool = True) -> None:
    """Docker's way with several names: each one done is printed, each failure is reported, and
    the command exits 1 if any failed."""
    failed = False
    for name in names:
        try:
            fn(name)
            if echo:
                click.echo(name)
        except errors.DockerMiniError as e:
            failed = True
            click.echo(f"docker-mini: error: {e}", err=True)
    if failed:
        ctx.exit(1)


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals.")
@click.option("-i", "--interactive", is_flag=True, help="Attach the container's STDIN (with -a).")
@click.option("--detach-keys", help='Keys that detach from -a (default "ctrl-p,ctrl-q").')
@containers_argument
@click.pass_context
def start(ctx, attach, interactive, detach_keys, containers_):
    """Start one or more stopped containers."""
    from reconciler.engine import containers
    engine = engine_from(ctx)
    if attach:
        if len(containers_) != 1:
            raise errors.InvalidArgument("you cannot start and attach multiple containers at once")
        rec = containers.resolve(engine, containers_[0])
        if rec.options.tty or rec.options.interactive:
            from reconciler.cli import interactive
            ctx.exit(interactive.start_session(ctx, engine, rec))
        holder: dict = {}
        rec = containers.start(engine, rec.id, on_created=attacher(engine, holder))
        sock = holder.get("sock")
        if sock is None:          # it was running already: attach to what comes next
            try:
                sock = connect_attach(engine, rec)
            except OSError:
                sock = None
        ctx.exit(follow_and_wait(engine, rec, sock))
    _each(ctx, containers_, lambda n: containers.start(engine, n))


def _report_each(ctx: click.Context, results) -> None:
    """What engine.bulk answers, reported as Docker does: each name done is printed, each
    failure gets its line, and the command exits 1 if any failed."""
    from reconciler.cli.common import error_text

    failed = False
    for name, error in results:
        if error is None:
            click.echo(name)
        else:
            failed = True
            click.echo(f"docker-mini: error: {error_text(error, ctx.info_name)}", err=True)
    if failed:
        ctx.exit(1)


def _many(ctx: click.Context, names, one, bulk) -> None:
    """One name: the engine's operation on it; several: engine.bulk's, which overlaps the waits."""
    if len(names) == 1:
        _each(ctx, names, one)
    else:
        _report_each(ctx, bulk())


def _timed_command(name: str, summary: str, one: str, many: str | None = None) -> click.Command:
    """A command on CONTAINER... with -t (stop, restart): engine.containers' `one` on each name,
    or with several names engine.bulk's `many` when it has one (which overlaps the waits)."""
    @click.command(name, help=summary)
    @time_option
    @containers_argument
    @click.pass_context
    def command(ctx, timeout, containers_):
        from reconciler.engine import bulk, containers
        engine = engine_from(ctx)
        each = lambda n: getattr(containers, one)(engine, n, timeout)   # noqa: E731
        if many is None:
            _each(ctx, containers_, each)
        else:
            _many(ctx, containers_, each, lambda: getattr(bulk, many)(engine, containers_, timeout))
    return command


stop = _timed_command("stop", "Stop one or more running containers.", "stop", "stop_many")
restart = _timed_command("restart", "Restart one or more containers.", "restart")


@click.command("kill")
@click.option("-s", "--signal", "signal_", default="KILL", show_default=True, help="Signal to send.")
@containers_argument
@click.pass_context
def kill(ctx, signal_, containers_):
    """Kill one or more running containers."""
    from reconciler.core.ociprocess import parse_signal
    from reconciler.engine import bulk, containers
    parse_signal(signal_)
    engine = engine_from(ctx)
    _many(ctx, containers_, lambda n: containers.kill(engine, n, signal_),
          lambda: bulk.kill_many(engine, containers_, signal_))


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (SIGKILL).")
@click.option("-v", "--volumes", is_flag=True, help="Accepted for Docker compatibility (no anonymous volumes).")
@containers_argument
@click.pass_context
def rm(ctx, force, volumes, containers_):
    """Remove one or more containers."""
    from reconciler.engine import bulk, containers
    engine = engine_from(ctx)
    _many(ctx, containers_, lambda n: containers.remove(engine, n, force=force),
          lambda: bulk.remove_many(engine, containers_, force=force))


@click.command("wait")
@containers_argument
@click.pass_context
def wait(ctx, containers_):
    """Block until one or more containers stop, then print their exit codes."""
    from reconciler.engine import containers
    engine = engine_from(ctx)
    _each(ctx, containers_, lambda n: click.echo(containers.wait(engine, n)), echo=False)


@click.command("container-cleanup", hidden=True)
@click.argument("container_id")
@click.argument("token", required=False)
@click.pass_context
def cleanup(ctx, container_id, token):
    """(internal) Run by conmon when a container's process ends."""
    from reconciler.engine import containers
    containers.cleanup(engine_from(ctx), container_id, token)

