"""plan, apply, down and watch: declarative stacks; and a stack's containers by service for
`logs --stack/--file`, `exec --stack/-f` and `down --stack` (by the containers' labels: no spec).

Exit codes: 0 converged (or nothing to do), 2 changes pending (plan, apply --dry-run),
1 failed (an invalid spec included: its errors are printed, each with file:line).
"""

from __future__ import annotations

import click

from reconciler.cli.common import engine_from
from reconciler.core.errors import SpecError

EXIT_PENDING = 2
EXIT_FAILED = 1

_file_option = click.option("-f", "--file", "spec", required=True, metavar="FILE|DIR",
                            help="A stack spec, a directory of *.yaml files forming one stack, or a "
                                 "compose file (or a directory holding compose.yaml).")
_project_option = click.option("-p", "--project-name", "project_name", metavar="NAME",
                               help="A compose file's stack name when it has no name: "
                                    "(default: its directory's name).")


_profile_option = click.option(
    "--profile", "profiles", multiple=True, metavar="NAME", expose_value=False,
    callback=lambda ctx, param, value: ctx.meta.__setitem__("compose_profiles", value),
    help="A compose profile to enable (also COMPOSE_PROFILES; repeatable).")


def spec_option(f):
    return _file_option(_project_option(_profile_option(f)))


def _load(ctx, spec: str, project_name: str | None = None):
    from reconciler.engine import stacks

    engine = engine_from(ctx)
    if project_name is not None:
        from reconciler.core.spec.compose import normalize_project_name
        if not project_name or normalize_project_name(project_name) != project_name:
            click.echo(f"docker-mini: invalid project name {project_name!r}: lower-case letters, "
                       "digits, '_' and '-', starting with a letter or digit", err=True)
            ctx.exit(125)
    try:
        env = None
        profiles = ctx.meta.get("compose_profiles")
        if profiles:
            import os
            env = {**os.environ, "COMPOSE_PROFILES": ",".join(
                filter(None, [os.environ.get("COMPOSE_PROFILES", ""), *profiles]))}
        return engine, stacks.load(engine, spec, env=env, project_name=project_name)
    except SpecError as e:
        click.echo(f"docker-mini: invalid stack spec:\n{e}", err=True)
        ctx.exit(EXIT_FAILED)


def print_plan(name: str, actions) -> None:
    if not actions:
        click.echo(f"{name}: converged, nothing to do")
        return
    click.echo(f"{name}: {len(actions)} action{'s' if len(actions) != 1 else ''}")
    width = max(len(a.target) for a in actions)
    for a in actions:
        click.echo(f"  {a.kind:<16} {a.target:<{width}}  {a.cause}")


def progress(action, status: str, text: str | None) -> None:
    if status == "start":
        return
    label = {"done": "done", "failed": "FAILED", "skipped": "skipped"}[status]
    line = f"  {label:<8} {action.kind} {action.target}"
    if status == "done":
        click.echo(f"{line}  ({text})")
    else:
        click.echo(f"{line}: {text}", err=status == "failed")


def _finish(ctx, name: str, result) -> None:
    outcome = result.outcome
    click.echo(f"{name}: {outcome.summary()}")
    if not outcome.ok:
        for action, why in outcome.failed:
            click.echo(f"docker-mini: {action.kind} {action.target} failed: {why}", err=True)
        ctx.exit(EXIT_FAILED)


@click.command("plan")
@spec_option
@click.pass_context
def plan(ctx, spec, project_name):
    """Show what `apply` would do, and why (exit 2 when changes are pending)."""
    from reconciler.engine import stacks

    engine, stack = _load(ctx, spec, project_name)
    actions = stacks.plan_stack(engine, stack)
    print_plan(stack.name, actions)
    ctx.exit(EXIT_PENDING if actions else 0)


def _converge(ctx, spec: str, dry_run: bool, operation, project_name: str | None = None) -> None:
    """Print the plan, run it (unless dry_run) with progress lines, exit with the outcome."""
    engine, stack = _load(ctx, spec, project_name)
    _converge_stack(ctx, stack, dry_run, operation, engine)


def _converge_stack(ctx, stack, dry_run: bool, operation, engine=None) -> None:
    engine = engine or engine_from(ctx)
    result = operation(engine, stack, dry_run=dry_run, progress=progress,
                       on_plan=lambda actions: print_plan(stack.name, actions))
    if dry_run:
        ctx.exit(EXIT_PENDING if result.planned else 0)
    if result.planned:
        _finish(ctx, stack.name, result)
    kept = False
    for name, why in result.removed_volumes:
        if why is None:
            click.echo(f"Deleted volume: {name}")
        else:
            kept = True
            click.echo(f"docker-mini: volume {name} kept: {why}", err=True)
    if kept:
        ctx.exit(EXIT_FAILED)


@click.command("apply")
@spec_option
@click.option("--dry-run", is_flag=True, help="Print the plan only (exit 2 when changes are pending).")
@click.pass_context
def apply(ctx, spec, project_name, dry_run):
    """Converge the host to a stack spec: pull, create, start, update, stop, remove."""
    from reconciler.engine import stacks

    _converge(ctx, spec, dry_run, stacks.apply, project_name)


@click.command("down")
@click.option("-f", "--file", "spec", metavar="FILE|DIR",
              help="The stack's spec (or compose file); or name the stack with --stack.")
@_project_option
@_profile_option
@click.option("--stack", "stack_name", metavar="NAME",
              help="The stack by name, from its containers' labels: no spec needed (it may no longer parse).")
@click.option("--rmi", is_flag=True, help="Also remove the stack's images (unless other containers use them).")
@click.option("-v", "--volumes", is_flag=True, help="Also remove the stack's own named volumes (never external ones).")
@click.option("--dry-run", is_flag=True, help="Print the plan only.")
@click.pass_context
def down(ctx, spec, project_name, stack_name, rmi, volumes, dry_run):
    """Stop and remove a stack's containers (its images too with --rmi)."""
    from reconciler.engine import stacks

    def operation(*a, **kw):
        return stacks.down(*a, remove_images=rmi, remove_volumes=volumes, **kw)

    if bool(spec) == bool(stack_name):
        raise click.UsageError("down needs the stack: -f FILE or --stack NAME (one of them)")
    if spec:
        _converge(ctx, spec, dry_run, operation, project_name)
        return
    if volumes:
        raise click.UsageError("--volumes needs the spec (-f FILE): which volumes are the stack's "
                               "own is written there, not on its containers")
    _converge_stack(ctx, stacks.stack_from_labels(engine_from(ctx), stack_name), dry_run, operation)


@click.command("watch")
@click.argument("directory", type=click.Path(exists=True, file_okay=True))
@click.option("--interval", default=10.0, show_default=True, type=click.FloatRange(0.2, None),
              metavar="SECONDS", help="Reconcile at least this often (repairs drift).")
@click.option("--debounce", default=0.5, show_default=True, type=click.FloatRange(0, None),
              metavar="SECONDS", help="Wait this long after the last change to the spec.")
@click.pass_context
def watch(ctx, directory, interval, debounce):
    """Keep the host converged to the spec in DIRECTORY.

    At start, on every change, and every --interval seconds; restart policies with backoff.
    SIGTERM stops it (containers keep running), SIGHUP reloads."""
    from reconciler import log
    from reconciler.watch import Watcher

    root = ctx.find_root()
    level = root.params.get("log_level") or "warning"
    if root.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
        level = "info"        # a watcher's log is what it is for: its events unless told otherwise
    log.configure_structlog(level)
    engine = engine_from(ctx)
    watcher = Watcher(engine, directory, interval=interval, debounce=debounce)
    ctx.exit(watcher.run())


# ---------------------------------------------------------------------------------------------
# a stack's containers by service: logs --stack, exec --stack / -f, down --stack


def stack_name_of(ctx, stack: str | None, spec: str | None, project_name: str | None = None) -> str:
    """The stack named by --stack, else by the spec file's name (loaded for that only)."""
    if stack and spec:
        raise click.UsageError("give either --stack NAME or a spec file, not both")
    if stack:
        return stack
    _, loaded = _load(ctx, spec, project_name)
    return loaded.name


def service_container_name(ctx, stack: str | None, spec: str | None, service: str) -> str:
    from reconciler.engine import stacks

    name = stack_name_of(ctx, stack, spec)
    return stacks.service_container(engine_from(ctx), name, service).name


# compose's colours for the service prefix, in turn
_COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow",
            "bright_green", "bright_magenta", "bright_blue")


def stack_logs(ctx, stack: str | None, spec: str | None, *, follow: bool, tail: int | None,
               timestamps: bool) -> None:
    """Every service's lines, each after a `service |` prefix (coloured on a terminal): by
    time, or as they come with --follow (until every container has exited)."""
    import queue
    import sys
    import threading

    from reconciler.engine import containers, stacks

    engine = engine_from(ctx)
    name = stack_name_of(ctx, stack, spec)
    services = stacks.service_containers(engine, name)
    if not services:
        raise click.ClickException(f"stack {name} has no containers")
    width = max(len(s) for s in services)
    colour = sys.stdout.isatty()
    prefixes = {}
    for i, service in enumerate(services):
        text = f"{service:<{width}} | "
        prefixes[service] = (click.style(text, fg=_COLOURS[i % len(_COLOURS)]) if colour else text).encode()
    out, err = sys.stdout.buffer, sys.stderr.buffer

    def write(service: str, line) -> None:
        target = err if line.stream == "stderr" else out
        stamp = (line.timestamp.replace("+00:00", "Z") + " ").encode() if timestamps else b""
        target.write(prefixes[service] + stamp + line.data)
        if follow:
            target.flush()

    if not follow:
        lines = [(line.timestamp, i, service, line) for i, (service, c) in enumerate(services.items())
                 for line in containers.read_logs(engine, c.id, tail=tail)]
        for _, _, service, line in sorted(lines, key=lambda t: (t[0], t[1])):
            write(service, line)
        return
    got: queue.Queue = queue.Queue()

    def read(service: str, cid: str) -> None:
        try:
            for line in containers.read_logs(engine, cid, tail=tail, follow=True):
                got.put((service, line))
        except Exception as e:              # one container's log going away ends its part only
            got.put((service, e))
        finally:
            got.put((service, None))

    readers = [threading.Thread(target=engine.delegate(read), args=(s, c.id), daemon=True)
               for s, c in services.items()]
    for t in readers:
        t.start()
    left = len(readers)
    while left:
        service, line = got.get()
        if line is None:
            left -= 1
        elif isinstance(line, Exception):
            click.echo(f"docker-mini: logs of {service}: {line}", err=True)
        else:
            write(service, line)
