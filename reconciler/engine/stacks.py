"""Stacks: load a spec from disk, plan it against what is there, apply it, take it down.

apply holds the engine's mutation lock from observing to the last action, so an apply, a
watcher and imperative commands never act on the same stale picture (no container is ever
started twice); a first look without the lock finds out whether there is anything to do. Pulls run first; the rest is planned again once they are done, because a pull
can change an image's digest and with it which containers must be recreated.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reconciler.core.errors import SpecError
from reconciler.core.actions import Action, Down, Kind
from reconciler.core.plan import plan
from reconciler.core.spec import ImageSpec, Stack, ValidCache, load_stack
from reconciler.engine.execute import Outcome, Progress, execute
from reconciler.engine.observe import observe

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "specs" / "stack.schema.json"


@lru_cache(maxsize=1)
def _schema_text(path: str) -> str:
    return Path(path).read_text()


def schema() -> dict:
    """specs/stack.schema.json: the one definition of a valid stack."""
    try:
        return json.loads(_schema_text(str(SCHEMA_PATH)))
    except FileNotFoundError:
        raise SpecError(f"the stack schema {SCHEMA_PATH} is missing from this installation") from None


MAX_FILE_BYTES = 1 << 20        # one spec or env file; more is refused, never read to the end

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def read_spec_file(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The text of one regular file, or a SpecError naming it. Fails closed: a dangling symlink,
    a FIFO (never opened: it would block), a device, a directory, a file larger than `limit`
    (at most limit+1 bytes are read) or one not UTF-8 is an error, never an empty file."""
    try:
        st = path.stat()                               # follows a symlink to what it names
    except FileNotFoundError:
        if path.is_symlink():
            raise SpecError(f"{path}: a dangling symlink (to {os.readlink(path)}): cannot read") from None
        raise SpecError(f"{path}: No such file or directory") from None
    except OSError as e:                               # ELOOP, EACCES, ENAMETOOLONG...
        raise SpecError(f"{path}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        what = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise SpecError(f"{path}: {what}, not a regular file: cannot read it as a spec")
    try:
        # O_NONBLOCK: had it become a FIFO since the stat, the open must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpecError(f"{path}: not a regular file: cannot read it as a spec")
            data = f.read(limit + 1)
    except OSError as e:
        raise SpecError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > limit:
        raise SpecError(f"{path}: larger than {limit >> 10} KiB: not read as a spec")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (byte {e.start}): cannot read") from None


def find_compose_file(directory: Path) -> Path | None:
    """The directory's compose file (compose.yaml, compose.yml, docker-compose.yaml, then
    docker-compose.yml, compose's order), if it holds one: the directory is then a compose project."""
    from reconciler.core.spec.compose import COMPOSE_FILE_NAMES

    for name in COMPOSE_FILE_NAMES:
        if os.path.lexists(directory / name):
            return directory / name
    return None


def compose_env(sources: list[tuple[str, str]], env) -> dict:
    """The variables a compose file is interpolated with: the .env file beside it, overridden by
    the environment (as compose). A native spec sees the environment only."""
    from reconciler.core.spec.compose import is_compose, parse_dotenv

    out = dict(env)
    if len(sources) != 1 or not is_compose(*sources[0]):
        return out
    dotenv = Path(sources[0][0]).parent / ".env"
    if not dotenv.exists():
        return out
    return {**parse_dotenv(read_spec_file(dotenv), str(dotenv)), **out}


def _is_spec_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix in (".yaml", ".yml")


def spec_sources(path: str | Path) -> list[tuple[str, str]]:
    """(file name, text) of a spec file, or of every *.yaml/*.yml in a directory (sorted).

    Every entry named *.yaml/*.yml must be a readable regular file (or a symlink to one): one
    that is not is an error naming it, never an absence, which would plan the removal of the
    containers it defines. Every bad entry is reported, not only the first."""
    p = Path(path)
    try:
        is_dir = stat.S_ISDIR(p.stat().st_mode)
    except FileNotFoundError:
        is_dir = False
    except OSError as e:
        raise SpecError(f"{p}: cannot read: {e.strerror or e}") from None
    if not is_dir:
        return [(str(p), read_spec_file(p))]
    compose_file = find_compose_file(p)
    if compose_file is not None:
        return [(str(compose_file), read_spec_file(compose_file))]
    try:
        files = sorted(p / name for name in os.listdir(p) if _is_spec_name(name))
    except OSError as e:
        raise SpecError(f"{p}: cannot list this directory: {e.strerror or e}") from None
    if not files:
        raise SpecError(f"{p}: no *.yaml files in this directory")
    out, errors = [], []
    for f in files:
        try:
            out.append((str(f), read_spec_file(f)))
        except SpecError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        err = SpecError("\n".join(str(e) for e in errors))
        err.errors = errors
        raise err
    return out


class FileValidCache(ValidCache):
    """Valid documents remembered as empty marker files under <root>/stacks/valid/<schema>/, so
    an unchanged spec (the common case for apply, plan and the watcher) skips JSON Schema
    validation. Keys are content hashes: a marker can never be stale."""

    KEEP = 256

    def __init__(self, engine):
        schema_id = hashlib.sha256(_schema_text(str(SCHEMA_PATH)).encode()).hexdigest()[:16]
        self.dir = engine.root / "stacks" / "valid" / schema_id

    def known_valid(self, key: str) -> bool:
        return (self.dir / key).exists()

    def remember_valid(self, key: str) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            (self.dir / key).touch()
            markers = list(self.dir.iterdir())
            if len(markers) > self.KEEP:
                for old in sorted(markers, key=lambda p: p.stat().st_mtime)[:len(markers) - self.KEEP]:
                    old.unlink(missing_ok=True)
        except OSError:
            pass                                 # a cache: validation simply runs next time


def _read_env_file(spec_file: str, name: str) -> str:
    """load_stack's callback: OSError when the file cannot be read (the loader names the key)."""
    path = Path(spec_file).parent / name
    try:
        return read_spec_file(path)
    except SpecError as e:
        raise OSError(errno.EINVAL, e.message.removeprefix(f"{path}: ")) from None


def load(engine, path: str | Path, env: dict | None = None, project_name: str | None = None) -> Stack:
    """A native spec (file or directory) or a compose file (or a directory holding one)."""
    sources = spec_sources(path)
    env = compose_env(sources, os.environ if env is None else env)
    return load_stack(sources, schema(), env,
                      subnet=engine.config.bridge_subnet, host_cpus=os.cpu_count() or 1,
                      read_env_file=_read_env_file, valid_cache=FileValidCache(engine),
                      project_name=project_name)


@dataclass
class ApplyResult:
    stack: Stack
    planned: list[Action]
    outcome: Outcome = field(default_factory=Outcome)
    dry_run: bool = False
    removed_volumes: list = field(default_factory=list)     # (name, None | why it was kept)

    @property
    def converged(self) -> bool:
        return not self.planned

    @property
    def ok(self) -> bool:
        return self.outcome.ok


def plan_stack(engine, stack: Stack, *, restart_policies: bool = False,
               restart_counts: dict | None = None) -> list[Action]:
    return plan(stack, observe(engine, stack, restart_counts), restart_policies=restart_policies)


def apply(engine, stack: Stack, *, dry_run: bool = False, progress: Progress | None = None,
          on_plan=None, restart_policies: bool = False, restart_counts: dict | None = None,
          filter_actions=None) -> ApplyResult:
    """Converge to `stack`. on_plan(actions) sees the plan before it runs; filter_actions(actions)
    may hold some back (the watcher's restart backoff)."""
    def planned(filtered: bool = True) -> list[Action]:
        actions = plan_stack(engine, stack, restart_policies=restart_policies,
                             restart_counts=restart_counts)
        return filter_actions(actions) if filtered and filter_actions is not None else actions

    # Nothing to do needs no lock (a watcher's pass, a re-apply): other commands are not held up.
    # A plan with actions is made again under the lock, and carried out under it. (The filter
    # may have effects, the watcher's backoff bookkeeping: it sees only the locked plan.)
    if dry_run or not planned(filtered=False):
        actions = planned() if dry_run else []
        if on_plan is not None:
            on_plan(actions)
        return ApplyResult(stack, actions, dry_run=dry_run)
    with engine.mutation():
        actions = planned()
        if on_plan is not None:
            on_plan(actions)
        result = ApplyResult(stack, actions, dry_run=dry_run)
        if not actions:
            return result
        pulls = [a for a in actions if a.kind == Kind.PULL]
        if pulls:
            first = execute(engine, stack, pulls, progress=progress)
            result.outcome.done += first.done
            result.outcome.failed += first.failed
            # planned again: a pulled image may have changed which containers need recreating
            rest = [a for a in plan_stack(engine, stack, restart_policies=restart_policies,
                                          restart_counts=restart_counts) if a.kind != Kind.PULL]
            if filter_actions is not None:
                # what the filter let through before the pulls is not filtered again (the
                # watcher's backoff would count the same restart twice and hold it back)
                approved = {a.id for a in actions}
                passed = approved | {a.id for a in filter_actions([a for a in rest if a.id not in approved])}
                rest = [a for a in rest if a.id in passed]
            before = [(a.kind, a.target, a.reason) for a in actions if a.kind != Kind.PULL]
            if on_plan is not None and [(a.kind, a.target, a.reason) for a in rest] != before:
                on_plan(rest)                    # what the pulled images changed
            rest, skipped = _after_pulls(rest, first)
            for action, why in skipped:
                result.outcome.skipped.append((action, why))
                if progress:
                    progress(action, "skipped", why)
        else:
            rest = actions
        second = execute(engine, stack, rest, progress=progress)
        result.outcome.done += second.done
        result.outcome.failed += second.failed
        result.outcome.skipped += second.skipped
        return result


def _after_pulls(actions: list[Action], pulls: Outcome) -> tuple[list[Action], list]:
    """Actions of the second plan: dependencies on pulls that succeeded are met; actions that
    needed a failed pull (and, transitively, theirs) are skipped."""
    done = {a.id for a in pulls.done}
    failed = {a.id for a, _ in pulls.failed}
    out, skipped, gone = [], [], {}
    for a in actions:
        bad = [d for d in a.deps if d in failed or d in gone]
        if bad:
            why = (f"needs {bad[0]}, which failed" if bad[0] in failed
                   else f"needs {bad[0]}, which was skipped")
            gone[a.id] = why
            skipped.append((a, why))
            continue
        out.append(dataclasses.replace(a, deps=tuple(d for d in a.deps if d not in done)))
    return out, skipped


def down_stack(stack: Stack, remove_images: bool = False) -> Stack:
    """The stack with every container absent (and its images too with remove_images)."""
    containers = {n: dataclasses.replace(s, state="absent") for n, s in stack.containers.items()}
    images = tuple(dataclasses.replace(i, state="absent") for i in stack.images) if remove_images else ()
    return Stack(stack.name, images, containers, stack.files, volumes=stack.volumes)


def down(engine, stack: Stack, *, remove_images: bool = False, progress: Progress | None = None,
         on_plan=None, dry_run: bool = False, remove_volumes: bool = False) -> ApplyResult:
    """remove_volumes: the stack's own named volumes go too, once its containers are gone
    (external ones never); a volume another container still uses is kept, and that is a failure."""
    gone = down_stack(stack, remove_images)

    def relabel(actions):
        return [dataclasses.replace(a, reason=Down()) for a in actions]

    result = apply(engine, gone, progress=progress, on_plan=on_plan, filter_actions=relabel,
                   dry_run=dry_run)
    if remove_volumes and not dry_run and result.ok:
        from reconciler.engine import volumes

        result.removed_volumes = volumes.remove_stack_volumes(engine, stack.volumes)
    return result


def service_containers(engine, stack_name: str) -> dict[str, object]:
    """{service: ContainerState} of the containers labelled with this stack (no spec needed),
    in the order they were created."""
    from reconciler.core.labels import SERVICE
    from reconciler.engine.observe import stack_containers
    rows = sorted(stack_containers(engine, stack_name), key=lambda c: c.created)
    return {(c.labels or {}).get(SERVICE) or c.name: c for c in rows}


def service_container(engine, stack_name: str, service: str):
    """The container of one service of a stack; NotFound naming the services there are."""
    from reconciler.core.errors import ContainerNotFound
    found = service_containers(engine, stack_name)
    if service not in found:
        known = ", ".join(found) or "none"
        raise ContainerNotFound(f"stack {stack_name} has no container for service {service!r}",
                       hint=f"its services: {known}")
    return found[service]


def stack_from_labels(engine, stack_name: str) -> Stack:
    """What `down --stack NAME` takes down when there is no spec (or it no longer parses): the
    stack's name and its containers' images, every container being one not in the spec."""
    images = dict.fromkeys(c.image for c in service_containers(engine, stack_name).values())
    return Stack(stack_name, tuple(ImageSpec(ref) for ref in images), {})
