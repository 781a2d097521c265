"""Container commands: create, start, run, stop, kill, restart, rm, ps, logs, wait."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from reconciler.cli.common import engine_from
from reconciler.core import errors
from reconciler.core.labels import STACK as STACK_LABEL

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
    from reconciler.core.ociconfig import parse_mount
    return [spec for k, spec in map(parse_mount, p.get("mounts") or ()) if k == kind]


@click.command("create", **RUN_SETTINGS)
@_container_options
@click.pass_context
def create(ctx, **params):
    """Create a new container (prints its id)."""
    from reconciler.engine import containers
    rec = containers.create(engine_from(ctx), build_options(params))
    click.echo(rec.id)


# ---------------------------------------------------------------------------------------------
# output streaming


def stream_output(sock) -> None:
    """Copy a running container's stdout/stderr from conmon's attach socket until it closes."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    while True:
        try:
            msg = sock.recv(65536)
        except InterruptedError:
            continue
        except OSError:
            break
        if not msg:
            break
        target = err if msg[0] == 3 else out
        target.write(msg[1:])
        target.flush()
    sock.close()


def connect_attach(engine, rec):
    import socket

    from reconciler.engine.containers import attach_socket_path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(attach_socket_path(engine, rec)))
        sock.shutdown(socket.SHUT_WR)   # no stdin from us: the container sees EOF only if -i
    except BaseException:
        sock.close()
        raise
    return sock


def _attacher(engine, holder: dict):
    """An on_created callback that connects to the attach socket before the process runs."""
    def attach(rec):
        try:
            holder["sock"] = connect_attach(engine, rec)
        except OSError:
            holder["sock"] = None
    return attach


def proxy_signals(engine, container_id: str) -> None:
    """Docker's --sig-proxy: signals sent to the foreground CLI go to the container's process."""
    import signal

    from reconciler.cli.foreground import PROXIED
    from reconciler.engine import containers

    def forward(signum, _frame):
        try:
            containers.kill(engine, container_id, str(signum))
        except errors.DockerMiniError:
            pass

    for sig in PROXIED:
        signal.signal(sig, forward)


def _follow_and_wait(engine, rec, sock, sig_proxy: bool = True) -> int:
    from reconciler.engine import containers
    if sig_proxy:
        proxy_signals(engine, rec.id)
    if sock is not None:
        stream_output(sock)
    return containers.wait(engine, rec.id)


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
    _start_or_remove(engine, rec, auto_remove, on_created=_attacher(engine, holder))
    sock = holder.get("sock")
    if sock is None:
        for line in containers.read_logs(engine, rec.id, follow=True):
            (sys.stderr if line.stream == "stderr" else sys.stdout).buffer.write(line.data)
    ctx.exit(_follow_and_wait(engine, rec, sock, sig_proxy=params.get("sig_proxy", True)))


# ---------------------------------------------------------------------------------------------
# lifecycle


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
        rec = containers.start(engine, rec.id, on_created=_attacher(engine, holder))
        sock = holder.get("sock")
        if sock is None:          # it was running already: attach to what comes next
            try:
                sock = connect_attach(engine, rec)
            except OSError:
                sock = None
        ctx.exit(_follow_and_wait(engine, rec, sock))
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


@click.command("stop")
@time_option
@containers_argument
@click.pass_context
def stop(ctx, timeout, containers_):
    """Stop one or more running containers."""
    from reconciler.engine import bulk, containers
    engine = engine_from(ctx)
    _many(ctx, containers_, lambda n: containers.stop(engine, n, timeout),
          lambda: bulk.stop_many(engine, containers_, timeout))


@click.command("kill")
@click.option("-s", "--signal", "signal_", default="KILL", show_default=True, help="Signal to send.")
@containers_argument
@click.pass_context
def kill(ctx, signal_, containers_):
    """Kill one or more running containers."""
    from reconciler.core.ociconfig import parse_signal
    from reconciler.engine import bulk, containers
    parse_signal(signal_)
    engine = engine_from(ctx)
    _many(ctx, containers_, lambda n: containers.kill(engine, n, signal_),
          lambda: bulk.kill_many(engine, containers_, signal_))


@click.command("restart")
@time_option
@containers_argument
@click.pass_context
def restart(ctx, timeout, containers_):
    """Restart one or more containers."""
    from reconciler.engine import containers
    engine = engine_from(ctx)
    _each(ctx, containers_, lambda n: containers.restart(engine, n, timeout))


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


# ---------------------------------------------------------------------------------------------
# ps


def status_text(c, now: float, restarting: bool = False) -> str:
    from reconciler.cli.formatting import human_duration, parse_time   # ps only, not run's path
    if restarting:
        finished = parse_time(c.finished_at) or now
        return f"Restarting ({c.exit_code}) {human_duration(max(0.0, now - finished))} ago"
    if c.status == "running":
        started = parse_time(c.started_at) or now
        return f"Up {human_duration(max(0.0, now - started))}"
    if c.status == "exited":
        finished = parse_time(c.finished_at)
        if finished is None:
            return "Created"
        return f"Exited ({c.exit_code}) {human_duration(max(0.0, now - finished))} ago"
    if c.status == "removing":
        return "Removal In Progress"
    if c.status == "dead":
        return "Dead"
    return "Created"


def ports_text(ports: list) -> str:
    out = []
    for p in ports or []:
        if not isinstance(p, dict):
            out.append(str(p))
            continue
        host_ip = p.get("host_ip") or "0.0.0.0"
        out.append(f"{host_ip}:{p.get('host_port')}->{p.get('container_port')}/{p.get('proto', 'tcp')}")
    return ", ".join(out)



PS_FILTERS = ("label", "name", "id", "status", "ancestor", "stack")


def _matches(c, filters: list[tuple[str, str]]) -> bool:
    for key, value in filters:
        if key == "label":
            k, sep, v = value.partition("=")
            if k not in c.labels or (sep and c.labels[k] != v):
                return False
        elif key == "name":
            if value.lstrip("/") not in c.name:
                return False
        elif key == "id":
            if not c.id.startswith(value):
                return False
        elif key == "stack":
            if c.labels.get(STACK_LABEL) != value:
                return False
        elif key == "status":
            if c.status != value:
                return False
        elif key == "ancestor":
            if value not in (c.image, c.image_id) and not c.image_id.removeprefix("sha256:").startswith(value):
                return False
    return True


def _row(c, now: float, no_trunc: bool, restarting: bool = False) -> dict:
    from reconciler.cli.formatting import human_duration, parse_time
    cmd = c.command
    created = parse_time(c.created) or now
    return {
        "ID": c.id if no_trunc else c.id[:12],
        "Image": c.image,
        "Command": f'"{cmd}"' if no_trunc or len(cmd) <= 20 else f'"{cmd[:19]}…"',
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
        "RunningFor": f"{human_duration(max(0.0, now - created))} ago",
        "Status": status_text(c, now, restarting),
        "State": "restarting" if restarting else c.status,
        "Ports": ports_text(c.ports) if c.status == "running" else "",   # bound only while up
        "Names": c.name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())),
        "Stack": c.labels.get(STACK_LABEL, ""),
        "Networks": c.record.options.network,
        "Mounts": ",".join(v.split(":")[0] for v in c.record.options.volumes),
        "LocalVolumes": "0",
        "Size": "",
    }


def _add_health(engine, items, rows) -> None:
    """`Up 5 seconds (healthy)`: the health of running containers that have a healthcheck."""
    if not any(c.status == "running" for c in items):
        return
    from reconciler.core.health import ps_suffix
    from reconciler.engine.health.state import status_of
    for c, row in zip(items, rows):
        if c.status == "running":
            row["Status"] += ps_suffix(status_of(engine, c.record, c))


def _monitor_restarting(c, now: float) -> bool:
    """An exited container whose exit path waits out its restart delay (`run --restart`, or
    a stack container's policy): the count is raised before that wait, so the policy said yes
    to one fewer; a wait long past its delay is not one (the monitor is gone)."""
    from reconciler.core import restart
    from reconciler.cli.formatting import parse_time
    st = c.record.state
    if c.status != "exited" or st.manually_stopped or not st.restart_count:
        return False
    try:
        policy = restart.RestartPolicy.parse(c.record.options.restart)
    except errors.DockerMiniError:
        return False
    if not restart.should_restart(policy, c.exit_code, st.restart_count - 1):
        return False
    finished = parse_time(c.finished_at)
    return finished is not None and now - finished < restart.exit_delay(st.restart_count) + 2.0


def _held_for_restart(engine, c, now: float) -> bool:
    """A container whose restart is held back shows as Restarting: by its exit path's delay,
    or (a stack container) by the watcher's backoff."""
    if _monitor_restarting(c, now):
        return True
    if c.status != "exited" or STACK_LABEL not in c.labels:
        return False
    from reconciler.engine.observe import is_restarting
    return is_restarting(engine, c.id, c.status, now)


@click.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (label=, name=, id=, status=, ancestor=).")
@click.option("--format", "fmt", help="json, table, or a template like '{{.ID}} {{.Names}}'.")
@click.pass_context
def ps(ctx, all_, quiet, no_trunc, filters, fmt):
    """List containers."""
    from reconciler.engine import containers
    engine = engine_from(ctx)
    parsed = []
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise errors.InvalidArgument(f"bad filter {f!r}: expected key=value")
        if key.strip() not in PS_FILTERS:
            raise errors.InvalidArgument(f"invalid filter {key.strip()!r}", hint="use " + ", ".join(PS_FILTERS))
        parsed.append((key.strip(), value.strip()))
    if any(k == "status" for k, _ in parsed):
        all_ = True
    items = [c for c in containers.list_containers(engine, all=all_) if _matches(c, parsed)]
    now = time.time()
    out = sys.stdout
    if quiet:
        out.write("".join((c.id if no_trunc else c.id[:12]) + "\n" for c in items))
        return
    rows = [_row(c, now, no_trunc, _held_for_restart(engine, c, now)) for c in items]
    _add_health(engine, items, rows)
    if fmt == "json":
        out.write("".join(json.dumps({k: v for k, v in r.items() if k != "Stack"}, separators=(",", ":")) + "\n"
                          for r in rows))
        return
    if fmt and fmt != "table":
        from reconciler.cli.formatting import render_template
        template = fmt[6:] if fmt.startswith("table ") else fmt
        out.write("".join(render_template(template, r) + "\n" for r in rows))
        return
    columns = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"), ("CREATED", "RunningFor"),
               ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")]
    if any(r["Stack"] for r in rows):
        columns.append(("STACK", "Stack"))
    table = [[h for h, _ in columns]] + [[r[k] for _, k in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) if i < len(columns) - 1 else cell for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip() + "\n")
    out.write("".join(lines))


# ---------------------------------------------------------------------------------------------
# logs


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
