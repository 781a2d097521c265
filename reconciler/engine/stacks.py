"""Stacks: load a spec from disk, plan it against what is there, apply it, take it down.

apply holds the engine's mutation lock from observing to the last action, so an apply, a
watcher and imperative commands never act on the same stale picture (no container is ever
started twice); a first look without the lock finds out whether there is anything to do. Pulls run first; the rest is planned again once they are done, because a pull
can change an image's digest and with it which containers must be recreated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reconciler.core.errors import SpecError
from reconciler.core.actions import Action, Down, Kind
from reconciler.core.plan import plan
from reconciler.core.spec import Stack, ValidCache, load_stack
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


def spec_sources(path: str | Path) -> list[tuple[str, str]]:
    """(file name, text) of a spec file, or of every *.yaml/*.yml in a directory (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()
                       and not f.name.startswith("."))
        if not files:
            raise SpecError(f"{p}: no *.yaml files in this directory")
    elif p.exists():
        files = [p]
    else:
        raise SpecError(f"{p}: no such file or directory")
    out = []
    for f in files:
        try:
            out.append((str(f), f.read_text()))
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"{f}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return out


class FileValidCache(ValidCache):
    """Valid documents remembered as empty marker files under <root>/stacks/valid/<schema>/, so
    an unchanged spec (the common case for apply, plan and the watcher) skips JSON Schema
    validation. Keys are content hashes: a marker can never be stale."""

    KEEP = 256

    def __init__(self, engine):
        schema_id = hashlib.sha256(_schema_text(str(SCHEMA_PATH)).encode()).hexdigest()[:16]
        self.dir = Path(engine.root) / "stacks" / "valid" / schema_id

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
    return (Path(spec_file).parent / name).read_text()


def load(engine, path: str | Path, env: dict | None = None) -> Stack:
    return load_stack(spec_sources(path), schema(), os.environ if env is None else env,
                      subnet=engine.config.bridge_subnet, host_cpus=os.cpu_count() or 1,
                      read_env_file=_read_env_file, valid_cache=FileValidCache(engine))


@dataclass
class ApplyResult:
    stack: Stack
    planned: list[Action]
    outcome: Outcome = field(default_factory=Outcome)
    dry_run: bool = False

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
    return Stack(stack.name, images, containers, stack.files)


def down(engine, stack: Stack, *, remove_images: bool = False, progress: Progress | None = None,
         on_plan=None, dry_run: bool = False) -> ApplyResult:
    gone = down_stack(stack, remove_images)

    def relabel(actions):
        return [dataclasses.replace(a, reason=Down()) for a in actions]

    return apply(engine, gone, progress=progress, on_plan=on_plan, filter_actions=relabel,
                 dry_run=dry_run)
