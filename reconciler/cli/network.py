"""`docker-mini network ls | prune`."""

from __future__ import annotations

import json
import sys

from reconciler.cli import flags
from reconciler.cli.common import engine_from


@flags.group()
def network():
    """Show or prune docker-mini's bridge network."""


@network.command("ls")
@flags.option("-q", "--quiet", is_flag=True, help="Only network names.")
@flags.option("--format", "fmt", type=flags.Choice(["table", "json"]), default="table", show_default=True)
@flags.pass_context
def ls(ctx, quiet, fmt):
    """List networks: the bridge (subnet, gateway, containers with their leases), host and none."""
    from reconciler.engine import network as net

    engine = engine_from(ctx)
    bridges = net.list_networks(engine)
    rows = bridges + [{"name": "host", "driver": "host"}, {"name": "none", "driver": "null"}]
    if quiet:
        for r in rows:
            flags.echo(r["name"])
        return
    if fmt == "json":
        flags.echo(json.dumps(rows, indent=2))
        return
    table = [("NAME", "DRIVER", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS")]
    for b in bridges:
        names = ", ".join(f"{c['name']} {c['ip']}{'' if c['active'] else ' (stopped)'}" for c in b["containers"])
        table.append((b["name"], "bridge", b["bridge"] + ("" if b["exists"] else " (absent)"),
                      b["subnet"], b["gateway"], names or "-"))
    table += [("host", "host", "-", "-", "-", "-"), ("none", "null", "-", "-", "-", "-")]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        flags.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)) + "   " + r[-1])


@network.command("prune")
@flags.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@flags.pass_context
def prune(ctx, force):
    """Remove the bridge and docker-mini's nftables table when no running container uses them."""
    from reconciler.engine import network as net

    engine = engine_from(ctx)
    if not force and sys.stdin.isatty():
        flags.confirm(f"This removes the bridge {engine.config.bridge_name} and its NAT rules if no "
                      "container uses them. Continue?", abort=True)
    removed = net.prune(engine)
    if removed:
        flags.echo("Deleted: " + ", ".join(removed))
    elif net.list_networks(engine)[0]["exists"]:
        flags.echo(f"Bridge {engine.config.bridge_name} is in use; nothing removed.")
    else:
        flags.echo("Nothing to remove.")
