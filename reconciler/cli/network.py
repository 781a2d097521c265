"""`docker-mini network ls | prune`."""

from __future__ import annotations

import json
import sys

import click

from reconciler.cli.common import engine_from


@click.group("network")
def network():
    """Show or prune docker-mini's bridge network."""


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only network names.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def ls(ctx, quiet, fmt):
    """List networks: the bridge (subnet, gateway, containers with their leases), host and none."""
    from reconciler.engine import network as net

    engine = engine_from(ctx)
    bridges = net.list_networks(engine)
    rows = bridges + [{"name": "host", "driver": "host"}, {"name": "none", "driver": "null"}]
    if quiet:
        for r in rows:
            click.echo(r["name"])
        return
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("NAME", "DRIVER", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS")]
    for b in bridges:
        names = ", ".join(f"{c['name']} {c['ip']}{'' if c['active'] else ' (stopped)'}" for c in b["containers"])
        table.append((b["name"], "bridge", b["bridge"] + ("" if b["exists"] else " (absent)"),
                      b["subnet"], b["gateway"], names or "-"))
    table += [("host", "host", "-", "-", "-", "-"), ("none", "null", "-", "-", "-", "-")]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)) + "   " + r[-1])


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def prune(ctx, force):
    """Remove the bridge and docker-mini's nftables table when no running container uses them."""
    from reconciler.engine import network as net

    engine = engine_from(ctx)
    if not force and sys.stdin.isatty():
        click.confirm(f"This removes the bridge {engine.config.bridge_name} and its NAT rules if no "
                      "container uses them. Continue?", abort=True)
    removed = net.prune(engine)
    if removed:
        click.echo("Deleted: " + ", ".join(removed))
    elif net.list_networks(engine)[0]["exists"]:
        click.echo(f"Bridge {engine.config.bridge_name} is in use; nothing removed.")
    else:
        click.echo("Nothing to remove.")
