"""`ps`: filters, the row of each container (status, ports, health, held restarts) and the
table, json or template it is printed as."""

from __future__ import annotations

import json
import sys
import time

import click

from reconciler.cli.common import engine_from
from reconciler.core import errors
from reconciler.core.labels import STACK as STACK_LABEL


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
