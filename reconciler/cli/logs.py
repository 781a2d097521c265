"""`logs`: a container's log (or a stack's, through cli.stacks), with --tail, --follow, --timestamps."""

from __future__ import annotations

import sys

import click

from reconciler.cli.common import engine_from
from reconciler.core import errors


def _docker_ts(ts: str) -> str:
    return ts.replace("+00:00", "Z")


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output (until the container exits).")
@click.option("-n", "--tail", default="all", show_default=True, help="Number of lines to show from the end.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--stack", metavar="NAME", help="Every service of a stack, each line after a `service |` prefix.")
@click.option("--file", "spec", metavar="FILE|DIR", help="As --stack, the stack named by this spec.")
@click.argument("container", required=False)
@click.pass_context
def logs(ctx, follow, tail, timestamps, stack, spec, container):
    """Fetch the logs of a container."""
    from reconciler.engine import containers
    engine = engine_from(ctx)
    if tail == "all":
        n = None
    else:
        try:
            n = int(tail)
        except ValueError:
            raise errors.InvalidArgument(f"invalid --tail {tail!r}: a number or all") from None
        if n < 0:
            n = None
    if stack or spec:
        if container:
            raise click.UsageError("give a container, or --stack / --file, not both")
        from reconciler.cli.stacks import stack_logs
        stack_logs(ctx, stack, spec, follow=follow, tail=n, timestamps=timestamps)
        return
    if not container:
        raise click.UsageError("logs needs a CONTAINER (or --stack NAME, --file FILE)")
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for line in containers.read_logs(engine, container, tail=n, follow=follow):
        target = err if line.stream == "stderr" else out
        if timestamps:
            target.write(_docker_ts(line.timestamp).encode() + b" ")
        target.write(line.data)
        if follow:
            target.flush()
