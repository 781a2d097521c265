"""`docker-mini healthcheck NAME`: run a container's healthcheck once, by hand."""

from __future__ import annotations

import click

from reconciler.cli.common import engine_from


@click.command("healthcheck")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; the exit code says it.")
@click.argument("container")
@click.pass_context
def healthcheck(ctx, quiet, container):
    """Run a container's healthcheck once now (exit 0 when healthy, 1 when not).

    The result is recorded as a probe by `watch` would be: `inspect` shows it in State.Health
    and `ps` in the container's status.
    """
    from reconciler.engine.health.probe import probe

    state = probe(engine_from(ctx), container)
    last = state.log[-1]
    if not quiet:
        output = last.output.rstrip("\n")
        click.echo(f"{state.status} (exit {last.exit_code}, failing streak {state.failing_streak})")
        if output:
            click.echo(output)
    ctx.exit(0 if last.exit_code == 0 else 1)
