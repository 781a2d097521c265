"""`docker-mini system check|prune`: leftovers of interrupted commands, and unused things."""

from __future__ import annotations

import click

from reconciler.cli.common import engine_from


@click.group("system")
def system():
    """Housekeeping: find what a crash left behind; remove what is unused."""


@system.command("check")
@click.option("--repair", is_flag=True, help="Remove the leftovers found (never images or running containers).")
@click.pass_context
def check(ctx, repair):
    """Find what an interrupted command left (half-pulled layers, dead containers, stale network)."""
    from reconciler.engine import system as ops

    found = ops.check(engine_from(ctx), repair=repair)
    for line in found:
        click.echo(("repaired: " if repair else "") + line)
    if not found:
        click.echo("no problems found")
    elif not repair:
        click.echo(f"{len(found)} problem(s); `docker-mini system check --repair` removes them", err=True)
        ctx.exit(1)


@system.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove every unused image, not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--volumes", is_flag=True, help="Also remove the named volumes no container uses.")
@click.pass_context
def prune(ctx, all_images, force, volumes):
    """Remove stopped containers, unused images and the network if nothing uses it."""
    from reconciler.engine import system as ops

    if not force:
        what = "all images without a container" if all_images else "dangling images"
        click.confirm(f"This removes all stopped containers, {what}, and the bridge and its nftables "
                      f"table if no container uses them. Continue?", abort=True)
    removed = ops.prune(engine_from(ctx), all_images=all_images, volumes=volumes)
    for cid in removed["containers"]:
        click.echo(f"Deleted container: {cid}")
    for iid in removed["images"]:
        click.echo(f"Deleted image: {iid}")
    for name in removed.get("volumes", ()):
        click.echo(f"Deleted volume: {name}")
    for what in removed["network"]:
        click.echo(f"Deleted network: {what}")
    for err in removed["errors"]:
        click.echo(f"not removed: {err}", err=True)
    if removed["errors"]:
        ctx.exit(1)
