"""The plan honours depends_on conditions: a dependent's start waits on a wait_healthy /
wait_completed action on its dependency, planned only when the dependent is to start."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from reconciler.core.actions import Kind
from reconciler.core.plan import Observed, ObservedContainer, plan
from reconciler.core.spec import load_stack

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "specs" / "stack.schema.json").read_text())
IMG = "127.0.0.1:5000/busybox:latest"
ID = "sha256:" + "a" * 64

SPEC = f"""\
stack: shop
containers:
  db:
    image: {IMG}
    healthcheck: {{test: [CMD, "true"], interval: 1s}}
  migrate:
    image: {IMG}
    depends_on: {{db: {{condition: service_healthy}}}}
  web:
    image: {IMG}
    depends_on:
      db: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}
"""


def _stack():
    return load_stack([("stack.yaml", SPEC)], SCHEMA, {}, subnet="10.88.0.0/16", host_cpus=2)


def _running(s, **status):
    out = {}
    for spec in s.containers.values():
        c = ObservedContainer(name=spec.container_name, id=spec.name * 8, stack=s.name, service=spec.name,
                              spec_hash=spec.spec_hash, spec=spec.hashed_fields(), image_digest=ID)
        out[c.name] = dataclasses.replace(c, **status.get(spec.name, {}))
    return out


def test_from_empty_dependents_start_after_the_waits():
    actions = plan(_stack(), Observed(images={IMG: ID}))
    by_id = {a.id: a for a in actions}
    wait_db = by_id["wait_healthy:shop-db"]
    assert wait_db.deps == ("start:shop-db",)
    assert wait_db.cause == "migrate, web depends on it: service_healthy"
    wait_job = by_id["wait_completed:shop-migrate"]
    assert wait_job.deps == ("start:shop-migrate",)
    assert set(by_id["start:shop-web"].deps) == {"create:shop-web", "wait_healthy:shop-db",
                                                  "wait_completed:shop-migrate"}
    assert set(by_id["start:shop-migrate"].deps) == {"create:shop-migrate", "wait_healthy:shop-db"}
    # creates do not wait: only starts
    assert "wait_healthy:shop-db" not in by_id["create:shop-web"].deps
    order = [a.id for a in actions]
    assert order.index("wait_healthy:shop-db") < order.index("start:shop-web")


def test_converged_plans_no_wait():
    s = _stack()
    assert plan(s, Observed(images={IMG: ID}, containers=_running(s))) == []


def test_a_dependent_to_start_waits_on_a_dependency_that_runs_already():
    s = _stack()
    seen = _running(s, web={"status": "created"})
    actions = plan(s, Observed(images={IMG: ID}, containers=seen))
    assert [(a.kind, a.target, a.deps) for a in actions] == [
        (Kind.WAIT_HEALTHY, "shop-db", ()),
        (Kind.WAIT_COMPLETED, "shop-migrate", ()),
        (Kind.START, "shop-web", ("wait_healthy:shop-db", "wait_completed:shop-migrate")),
    ]
