"""`docker-mini network create | ls | inspect | rm | prune`."""

from __future__ import annotations

import json
import sys

import click

from reconciler.cli.common import engine_from, parse_labels
from reconciler.core.errors import InvalidArgument

# host and none are modes, not networks with a bridge: `network ls` shows them as Docker does
_PSEUDO = [{"Name": "host", "Driver": "host"}, {"Name": "none", "Driver": "null"}]


def _pseudo_id(name: str) -> str:
    import hashlib
    return hashlib.sha256(f"docker-mini {name} network".encode()).hexdigest()


@click.group("network")
def network():
    """Manage networks: user-defined bridge networks and the default one.

    The default network is named "bridge" (Docker's name); its Linux bridge and subnet are the
    configuration's bridge-name and bridge-subnet."""


@network.command("create")
@click.option("--subnet", help="Subnet in CIDR form (default: the next free one of default-address-pools).")
@click.option("--gateway", help="Gateway address of the subnet (default: its first address).")
@click.option("--internal", is_flag=True, help="No route out: containers reach only their network.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set metadata on the network.")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Only bridge is supported.")
@click.argument("name")
@click.pass_context
def create(ctx, subnet, gateway, internal, labels, driver, name):
    """Create a bridge network with its own subnet, isolated from other networks."""
    from reconciler.engine.network import networks

    if driver != "bridge":
        raise InvalidArgument(f"--driver {driver}: only the bridge driver is supported")
    net = networks.create(engine_from(ctx), name, subnet=subnet, gateway=gateway, internal=internal,
                          labels=parse_labels(labels))
    click.echo(net.id)


def _rows(engine) -> list[dict]:
    from reconciler.engine import network as net
    return net.list_networks(engine) + [
        {"Name": p["Name"], "Id": _pseudo_id(p["Name"]), "Driver": p["Driver"], "Scope": "local"} for p in _PSEUDO]


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only network IDs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def ls(ctx, quiet, fmt):
    """List networks (Docker's columns); --format json prints each as `network inspect` does."""
    rows = _rows(engine_from(ctx))
    if quiet:
        for r in rows:
            click.echo(r["Id"][:12])
        return
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("NETWORK ID", "NAME", "DRIVER", "SCOPE")]
    table += [(r["Id"][:12], r["Name"], r["Driver"], r["Scope"]) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)) + "   " + r[-1])


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, names):
    """Show networks in Docker's shape (IPAM config, running containers with their addresses)."""
    from reconciler.engine import network as net
    from reconciler.engine.network import networks

    engine = engine_from(ctx)
    out = [net.inspect_network(engine, networks.find(engine, n)) for n in names]
    click.echo(json.dumps(out, indent=4))


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, names):
    """Remove networks; refused while a container (running or stopped) is on one."""
    from reconciler.engine.network import networks

    engine = engine_from(ctx)
    for name in names:
        networks.remove(engine, name)
        click.echo(name)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def prune(ctx, force):
    """Remove user-defined networks no container is on; and the default bridge with its NAT rules
    when no running container uses it (it is made again at the next start)."""
    from reconciler.engine import network as net
    from reconciler.engine.network import networks

    engine = engine_from(ctx)
    if not force and sys.stdin.isatty():
        click.confirm("This removes all networks not used by at least one container, and the bridge "
                      f"{engine.config.bridge_name} if no container runs on it. Continue?", abort=True)
    gone = networks.prune(engine)
    if gone:
        click.echo("Deleted Networks:")
        for n in gone:
            click.echo(n.name)
    removed = net.prune(engine)
    if removed:
        click.echo("Deleted: " + ", ".join(removed))
    elif not gone:
        if engine.netlink.link_exists(engine.config.bridge_name):
            click.echo(f"Bridge {engine.config.bridge_name} is in use; nothing removed.")
        else:
            click.echo("Nothing to remove.")


@network.command("connect")
@click.option("--ip", help="IPv4 address on the network (default: the lowest free one).")
@click.option("--alias", "aliases", multiple=True, help="Another name of the container on this network.")
@click.argument("name")
@click.argument("container")
@click.pass_context
def connect(ctx, ip, aliases, name, container):
    """Connect a container to a further network (eth1, eth2...; wired at once if it runs)."""
    from reconciler.engine import network as net

    net.connect(engine_from(ctx), name, container, ip=ip, aliases=list(aliases))


@network.command("disconnect")
@click.argument("name")
@click.argument("container")
@click.pass_context
def disconnect(ctx, name, container):
    """Disconnect a container from a network it was connected to with `network connect`."""
    from reconciler.engine import network as net

    net.disconnect(engine_from(ctx), name, container)


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False, metavar="[PRIVATE_PORT[/PROTO]]")
@click.pass_context
def port(ctx, container, private_port):
    """List port mappings of a container.

    One line per mapping, as Docker prints them: 80/tcp -> 0.0.0.0:8080."""
    from reconciler.engine import containers

    engine = engine_from(ctx)
    info = containers.inspect_container(engine, container)
    ports = info["NetworkSettings"]["Ports"] or {}
    if private_port and "/" not in private_port:
        private_port += "/tcp"
    lines = [f"{key} -> {b['HostIp']}:{b['HostPort']}" if not private_port else f"{b['HostIp']}:{b['HostPort']}"
             for key, bindings in sorted(ports.items()) if bindings and (not private_port or key == private_port)
             for b in bindings]
    if private_port and not lines:
        raise InvalidArgument(f"no public port {private_port!r} published for {container}")
    for line in lines:
        click.echo(line)
