"""`create` and `run`: the flags they share (Docker's names) and how they become CreateOptions."""

from __future__ import annotations

import os
import sys

import click

from reconciler.cli.attached import attacher, follow_and_wait
from reconciler.cli.common import engine_from
from reconciler.core import errors

# run and create: options end at the image, the rest is the container's command line
RUN_SETTINGS = {"context_settings": {"allow_interspersed_args": False}}


def _first_network(ctx, param, values):
    """--network repeated: the first is the container's own (eth0), the rest are joined as
    `network connect` would (eth1...)."""
    ctx.params["networks"] = tuple(values[1:])
    return values[0] if values else "bridge"


def _container_options(f):
    """The flags `create` and `run` share (Docker's names)."""
    opts = [
        click.option("--name", help="Assign a name to the container."),
        click.option("-e", "--env", "env", multiple=True, help="Set environment variables (K=V, or K from your env)."),
        click.option("--env-file", "env_files", multiple=True, type=click.Path(dir_okay=False),
                     help="Read in a file of environment variables."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])."),
        click.option("-h", "--hostname", help="Container host name."),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image."),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only."),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities."),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities."),
        click.option("--security-opt", multiple=True, help="Security options (no-new-privileges, seccomp=unconfined)."),
        click.option("--ulimit", "ulimits", multiple=True, help="Ulimit options (name=soft[:hard])."),
        click.option("-v", "--volume", "volumes", multiple=True, help="Bind mount a volume (/host:/ctr[:ro] or NAME:/ctr[:ro])."),
        click.option("--mount", "mounts", multiple=True, help="Attach a filesystem mount (type=volume|bind|tmpfs,source=..,target=..[,readonly])."),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory (/path[:opts])."),
        click.option("--network", "--net", "network", multiple=True, callback=_first_network,
                     help="Connect a container to a network (bridge (default), none, host, container:NAME "
                          "or a network's name; repeat for more networks)."),
        click.option("--network-alias", "network_aliases", multiple=True,
                     help="Another name of the container on its (first) network."),
        click.option("--add-host", "add_hosts", multiple=True, metavar="HOST:IP",
                     help="Add a custom host-to-IP mapping to /etc/hosts."),
        click.option("--dns", multiple=True, help="Set custom DNS servers."),
        click.option("--dns-search", multiple=True, help="Set custom DNS search domains (\".\" for none)."),
        click.option("--ip", help="IPv4 address."),
        click.option("--mac-address", "mac", help="Container MAC address."),
        click.option("-p", "--publish", "ports", multiple=True, help="Publish a container's port(s) to the host."),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random host ports."),
        click.option("-l", "--label", "labels", multiple=True, help="Set meta data on a container (k=v)."),
        click.option("--restart", default="no", show_default=True, help="Restart policy."),
        click.option("--stop-signal", help="Signal to stop the container."),
        click.option("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container."),
        click.option("-m", "--memory", help="Memory limit."),
        click.option("--memory-swap", help="Swap limit equal to memory plus swap: -1 unlimited."),
        click.option("--cpus", help="Number of CPUs."),
        click.option("--cpu-period", help="Limit CPU CFS period."),
        click.option("--cpu-quota", help="Limit CPU CFS quota."),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)."),
        click.option("--pids-limit", help="Tune container pids limit (-1 for unlimited)."),
        click.option("--storage-opt", multiple=True, help="Storage driver options (size=1g)."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.argument("image"),
        click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[COMMAND] [ARG...]"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _labels(items) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise errors.InvalidArgument(f"invalid label {item!r}: expected key=value")
        out[key] = value
    return out


def _resources(p: dict):
    limit_params = ("memory", "memory_swap", "cpus", "cpu_period", "cpu_quota", "cpuset_cpus", "pids_limit")
    if not any(p.get(k) not in (None, "") for k in limit_params):
        return None
    from reconciler.adapters import cgroups
    from reconciler.core.limits import parse_resources
    return parse_resources(memory=p.get("memory"), memory_swap=p.get("memory_swap"), cpus=p.get("cpus"),
                           cpu_period=p.get("cpu_period"), cpu_quota=p.get("cpu_quota"),
                           cpuset_cpus=p.get("cpuset_cpus"), pids_limit=p.get("pids_limit"),
                           host_cpus=cgroups.host_cpus(), host_cpuset=cgroups.host_cpuset())


def _storage_size(items) -> int | None:
    from reconciler.core.units import parse_size
    size = None
    for item in items:
        key, _, value = item.partition("=")
        if key.strip().lower() != "size" or not value:
            raise errors.InvalidArgument(f"invalid --storage-opt {item!r}: only size=<size> is supported")
        size = parse_size(value, "--storage-opt size")
    return size


def build_options(p: dict, *, auto_remove: bool = False):
    from reconciler.core.envfile import parse_env_file
    from reconciler.engine.containers import CreateOptions
    env: list[str] = []
    for path in p.get("env_files") or ():
        try:
            text = open(path, encoding="utf-8").read()
        except OSError as e:
            raise errors.InvalidArgument(f"--env-file {path}: {e.strerror}") from None
        env += parse_env_file(text, path, os.environ.get)
    for item in p.get("env") or ():
        if "=" in item:
            env.append(item)
        elif item in os.environ:
            env.append(f"{item}={os.environ[item]}")
    entrypoint = None
    if p.get("entrypoint") is not None:
        entrypoint = [p["entrypoint"]] if p["entrypoint"] else []
    return CreateOptions(
        image=p["image"], name=p.get("name"), command=list(p["command"]) or None, entrypoint=entrypoint,
        env=env, workdir=p.get("workdir"), user=p.get("user"), hostname=p.get("hostname"),
        read_only=bool(p.get("read_only")), cap_add=list(p.get("cap_add") or ()),
        cap_drop=list(p.get("cap_drop") or ()), security_opt=list(p.get("security_opt") or ()),
        ulimits=list(p.get("ulimits") or ()), resources=_resources(p),
        storage_size=_storage_size(p.get("storage_opt") or ()), volumes=list(p.get("volumes") or ()) + _mounts(p, "volume"),
        tmpfs=list(p.get("tmpfs") or ()) + _mounts(p, "tmpfs"), network=p.get("network") or "bridge",
        networks=list(p.get("networks") or ()), network_aliases=list(p.get("network_aliases") or ()), ip=p.get("ip"),
        add_hosts=list(p.get("add_hosts") or ()), dns=list(p.get("dns") or ()), dns_search=list(p.get("dns_search") or ()),
        publish_all=bool(p.get("publish_all")),
        mac=p.get("mac"), ports=list(p.get("ports") or ()), labels=_labels(p.get("labels") or ()),
        restart=p.get("restart") or "no", stop_signal=p.get("stop_signal"),
        stop_timeout=p.get("stop_timeout"), tty=bool(p.get("tty")), interactive=bool(p.get("interactive")),
        auto_remove=auto_remove)


def _mounts(p: dict, kind: str) -> list[str]:
    from reconciler.core.ocimounts import parse_mount
    return [spec for k, spec in map(parse_mount, p.get("mounts") or ()) if k == kind]


@click.command("create", **RUN_SETTINGS)
@_container_options
@click.pass_context
def create(ctx, **params):
    """Create a new container (prints its id)."""
    from reconciler.engine import containers
    rec = containers.create(engine_from(ctx), build_options(params))
    click.echo(rec.id)



def _start_or_remove(engine, rec, auto_remove: bool, **start_options) -> None:
    """Start a container `run` made; with --rm, one that fails to start is removed too."""
    from reconciler.engine import containers
    try:
        containers.start(engine, rec.id, **start_options)
    except errors.DockerMiniError:
        if auto_remove:
            containers.remove(engine, rec.id, force=True)
        raise


@click.command("run", **RUN_SETTINGS)
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID.")
@click.option("--rm", "auto_remove", is_flag=True, help="Automatically remove the container when it exits.")
@click.option("--detach-keys", help='Keys that detach from -i/-t (default "ctrl-p,ctrl-q").')
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Forward received signals (without -t).")
@_container_options
@click.pass_context
def run(ctx, detach, auto_remove, **params):
    """Create and start a container.

    In the foreground its output streams and its exit code is ours."""
    from reconciler.engine import containers
    engine = engine_from(ctx)
    opts = build_options(params, auto_remove=auto_remove)
    rec = containers.create(engine, opts)
    if detach:
        _start_or_remove(engine, rec, auto_remove)
        click.echo(rec.id)
        return
    if opts.tty or opts.interactive:
        from reconciler.cli import interactive
        code = interactive.run_session(ctx, engine, rec, auto_remove=auto_remove)
        ctx.exit(code)
    from reconciler.cli import foreground
    if not foreground.needs_monitor(opts):
        ctx.exit(foreground.run_attached(engine, rec.id, auto_remove, sig_proxy=params.get("sig_proxy", True)))
    holder: dict = {}
    # only a restart policy gets here (-i/-t went above), which --rm conflicts with
    _start_or_remove(engine, rec, auto_remove, on_created=attacher(engine, holder))
    sock = holder.get("sock")
    if sock is None:
        for line in containers.read_logs(engine, rec.id, follow=True):
            (sys.stderr if line.stream == "stderr" else sys.stdout).buffer.write(line.data)
    ctx.exit(follow_and_wait(engine, rec, sock, sig_proxy=params.get("sig_proxy", True)))
