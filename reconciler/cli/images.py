"""`docker-mini pull | images | rmi | login | logout`."""

from __future__ import annotations

import json
import sys
import threading
import time

import click

from reconciler.cli.common import engine_from
from reconciler.cli.formatting import human_duration, parse_time


def created_ago(created: str) -> str:
    when = parse_time(created)
    return "N/A" if when is None else f"{human_duration(max(0.0, time.time() - when))} ago"


class _TerminalProgress:
    """Docker-like per-layer lines, rewritten in place (ANSI cursor-up), redrawn at most ~12/s."""

    INTERVAL = 0.08

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.lines: dict[str, str] = {}   # layer id -> current text, in first-seen order
        self.drawn = 0
        self.last = 0.0

    def __call__(self, p) -> None:
        from reconciler.core.units import human_size

        with self.lock:
            if p.id is None:
                self._draw(force=True)
                self.out.write(p.status + "\n")
                self.drawn = 0
                self.lines.clear()
                self.out.flush()
                return
            if p.status == "Downloading" and p.total:
                width = 30
                filled = min(width, int(width * p.current / p.total)) if p.total else 0
                bar = "[" + "=" * max(0, filled - 1) + (">" if filled else "") + " " * (width - filled) + "]"
                text = f"{p.id}: Downloading {bar} {human_size(p.current)}/{human_size(p.total)}"
            elif p.status == "Waiting":
                text = f"{p.id}: Pulling fs layer"
            else:
                text = f"{p.id}: {p.status}"
            self.lines[p.id] = text
            self._draw(force=p.status != "Downloading")

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.INTERVAL:
            return
        self.last = now
        import shutil
        width = max(20, shutil.get_terminal_size().columns - 1)  # a wrapped line breaks cursor-up
        buf = []
        if self.drawn:
            buf.append(f"\x1b[{self.drawn}A")
        for text in self.lines.values():
            buf.append("\x1b[2K" + text[:width] + "\n")
        self.out.write("".join(buf))
        self.out.flush()
        self.drawn = len(self.lines)


class _PlainProgress:
    """One line per state change (no byte counts): for logs and pipes."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, p) -> None:
        if p.status == "Downloading":
            return
        text = p.status if p.id is None else f"{p.id}: {'Pulling fs layer' if p.status == 'Waiting' else p.status}"
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()


@click.command("pull")
@click.argument("ref", metavar="NAME[:TAG|@DIGEST]")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="Pull this platform of a multi-platform image.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image's reference.")
@click.pass_context
def pull(ctx, ref, platform, quiet):
    """Pull an image from a registry."""
    from reconciler.core.reference import parse_reference
    from reconciler.engine import images

    engine = engine_from(ctx)
    parsed = parse_reference(ref, engine.config.default_host)  # bad references fail before any I/O
    progress = None
    if not quiet:
        if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
            click.echo("Using default tag: latest")
        progress = _TerminalProgress(sys.stdout) if sys.stdout.isatty() else _PlainProgress(sys.stdout)
    images.pull(engine, ref, platform=platform, progress=progress)
    click.echo(str(parsed))


@click.command("images")
@click.argument("repository", required=False, metavar="[REPOSITORY[:TAG]]")
@click.option("-q", "--quiet", is_flag=True, help="Only image IDs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--no-trunc", is_flag=True, help="Do not truncate the image IDs.")
@click.pass_context
def images(ctx, repository, quiet, fmt, no_trunc):
    """List images: REPOSITORY TAG IMAGE ID CREATED SIZE."""
    from reconciler.core.reference import parse_reference
    from reconciler.core.units import human_size
    from reconciler.engine import images as eng

    engine = engine_from(ctx)
    rows = eng.list_images(engine)
    if repository:
        wanted = parse_reference(repository, engine.config.default_host)
        explicit_tag = ":" in repository.rsplit("/", 1)[-1]
        rows = [r for r in rows if r["repository"] == wanted.familiar_name()
                and (not explicit_tag or r["tag"] == wanted.tag)]
    if quiet:
        for r in rows:
            click.echo(r["id"] if no_trunc else r["short_id"])
        return
    if fmt == "json":
        for r in rows:
            click.echo(json.dumps({
                "ID": r["id"] if no_trunc else r["short_id"], "Repository": r["repository"], "Tag": r["tag"],
                "Digest": r["digest"] or "<none>", "CreatedAt": r["created"],
                "CreatedSince": created_ago(r["created"]), "Size": human_size(r["size"]),
                "VirtualSize": human_size(r["size"]), "Names": r["names"]}, sort_keys=True))
        return
    table = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for r in rows:
        table.append((r["repository"], r["tag"], r["id"] if no_trunc else r["short_id"],
                      created_ago(r["created"]), human_size(r["size"])))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths)) + "   " + row[-1])


@click.command("rmi")
@click.argument("names", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-f", "--force", is_flag=True, help="Remove even if stopped containers use it; untag "
                                                  "images referenced in several repositories.")
@click.pass_context
def rmi(ctx, names, force):
    """Remove images (their layers too, unless another image shares them)."""
    from reconciler.engine import images as eng

    engine = engine_from(ctx)
    eng.remove_images(engine, list(names), force=force, report=lambda kind, what: click.echo(f"{kind}: {what}"))


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", help="Username.")
@click.option("-p", "--password", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def login(ctx, server, username, password, password_stdin):
    """Log in to a registry (credentials stored 0600 under the root)."""
    from reconciler.core.errors import InvalidArgument
    from reconciler.engine import auth

    if password and password_stdin:
        raise InvalidArgument("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise InvalidArgument("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if password and not password_stdin:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    engine = engine_from(ctx)
    auth.login(engine, server, username, password)
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("server", required=False)
@click.pass_context
def logout(ctx, server):
    """Forget the credentials stored for a registry."""
    from reconciler.engine import auth

    engine = engine_from(ctx)
    shown = auth.logout(engine, server)
    if shown is None:
        click.echo(f"Not logged in to {server or engine.config.default_host}")
    else:
        click.echo(f"Removing login credentials for {shown}")
