"""`docker-mini volume create | ls | inspect | rm | prune`: named volumes, in Docker's shapes."""

from __future__ import annotations

import json

import click

from reconciler.cli.common import engine_from, parse_labels
from reconciler.core.errors import InvalidArgument


@click.group("volume")
def volume():
    """Manage named volumes (<root>/volumes/NAME/_data)."""


@volume.command("create")
@click.option("-d", "--driver", default="local", show_default=True, help="Only local is supported.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set metadata on the volume.")
@click.argument("name", required=False)
@click.pass_context
def create(ctx, driver, labels, name):
    """Create a volume (prints its name); a random name when none is given."""
    from reconciler.engine import volumes

    if driver != "local":
        raise InvalidArgument(f"--driver {driver}: only the local driver is supported")
    click.echo(volumes.create(engine_from(ctx), name, parse_labels(labels))["Name"])


def _filters(items) -> list:
    """--filter dangling=true|false, name=SUBSTRING, label=KEY[=VALUE], as Docker's."""
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in ("dangling", "name", "label"):
            raise InvalidArgument(f"invalid filter {item!r} (dangling=true|false, name=..., label=KEY[=VALUE])")
        if key == "dangling" and value not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter {item!r}: dangling takes true or false")
        out.append((key, value))
    return out


def _matches(v: dict, filters, used: set) -> bool:
    for key, value in filters:
        if key == "dangling" and (v["Name"] not in used) != (value in ("true", "1")):
            return False
        if key == "name" and value not in v["Name"]:
            return False
        if key == "label":
            k, eq, want = value.partition("=")
            if k not in v["Labels"] or (eq and str(v["Labels"][k]) != want):
                return False
    return True


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="dangling=true|false, name=..., label=KEY[=VALUE].")
@click.option("--format", "fmt", help="json (one JSON object per line), or a template: '{{.Name}}'.")
@click.pass_context
def ls(ctx, quiet, filters, fmt):
    """List volumes: DRIVER VOLUME NAME."""
    from reconciler.engine import volumes

    wanted = _filters(filters)
    engine = engine_from(ctx)
    used = volumes.in_use(engine) if any(k == "dangling" for k, _ in wanted) else set()
    rows = [{"Driver": v["Driver"], "Labels": ",".join(f"{k}={x}" for k, x in v["Labels"].items()),
             "Mountpoint": v["Mountpoint"], "Name": v["Name"], "Scope": v["Scope"]}
            for v in volumes.list_volumes(engine) if _matches(v, wanted, used)]
    if quiet:
        for v in rows:
            click.echo(v["Name"])
    elif fmt == "json":
        for v in rows:
            click.echo(json.dumps(v))
    elif fmt:
        from reconciler.cli.formatting import render_template
        for v in rows:
            click.echo(render_template(fmt, v))
    else:
        click.echo(f"{'DRIVER':<10}VOLUME NAME")
        for v in rows:
            click.echo(f"{v['Driver']:<10}{v['Name']}")


@volume.command("inspect")
@click.option("-f", "--format", "fmt", help="A template per volume, e.g. '{{.Mountpoint}}'.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, fmt, names):
    """Display detailed information on one or more volumes (a JSON array)."""
    from reconciler.core.errors import DockerMiniError
    from reconciler.engine import volumes

    engine = engine_from(ctx)
    out, failed = [], []
    for name in names:
        try:
            out.append(volumes.inspect(engine, name))
        except DockerMiniError as e:
            failed.append(e.message)
    if fmt:
        from reconciler.cli.formatting import render_template
        for v in out:
            click.echo(render_template(fmt, v))
    else:
        click.echo(json.dumps(out, indent=4))
    for message in failed:
        click.echo(f"Error: {message}", err=True)
    if failed:
        ctx.exit(1)


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="No error for a volume that does not exist.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, force, names):
    """Remove one or more volumes (refused for a volume a container uses)."""
    from reconciler.core.errors import DockerMiniError
    from reconciler.engine import volumes

    engine = engine_from(ctx)
    failed = False
    for name in names:
        try:
            volumes.remove(engine, name, force=force)
            click.echo(name)
        except DockerMiniError as e:
            failed = True
            click.echo(f"Error response from daemon: {e.message}", err=True)
    if failed:
        ctx.exit(1)


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Accepted for Docker compatibility (every unused volume is removed).")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def prune(ctx, all_, force):
    """Remove every volume no container uses."""
    from reconciler.core.units import human_size
    from reconciler.engine import volumes

    if not force:
        click.confirm("WARNING! This will remove all local volumes not used by at least one container.\n"
                      "Are you sure you want to continue?", abort=True)
    removed, space = volumes.prune(engine_from(ctx))
    if removed:
        click.echo("Deleted Volumes:")
        for name in removed:
            click.echo(name)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(space)}")
