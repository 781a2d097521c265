"""`inspect`: containers first, then images, in Docker's JSON shape."""

from __future__ import annotations

import json
import sys

import click

from reconciler.cli.common import engine_from
from reconciler.core import errors


@click.command("inspect")
@click.option("-f", "--format", "fmt", help="Format the output using a template ('{{.State.Status}}', '{{json .Config}}').")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), help="Only look for this kind of object.")
@click.argument("names", metavar="NAME|ID...", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, fmt, kind, names):
    """Return low-level information on containers or images."""
    from reconciler.cli.formatting import render_template
    engine = engine_from(ctx)
    found, failed = [], False
    for name in names:
        obj = None
        if kind in (None, "container"):
            from reconciler.engine import containers
            try:
                obj = containers.inspect_container(engine, name)
            except errors.ContainerNotFound:
                obj = None
        if obj is None and kind in (None, "image"):
            from reconciler.engine import images
            try:
                obj = images.inspect_image(engine, name)
            except (errors.ImageNotFound, errors.InvalidReference):
                obj = None
        if obj is None:
            failed = True
            click.echo(f"docker-mini: error: No such object: {name}", err=True)
            continue
        found.append(obj)
    if fmt:
        sys.stdout.write("".join(render_template(fmt, o) + "\n" for o in found))
    else:
        sys.stdout.write(json.dumps(found, indent=4) + "\n")
    if failed:
        ctx.exit(1)
