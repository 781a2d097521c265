"""The plan as data: (desired spec, observed state) -> expected actions with their causes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from reconciler.core.limits import Resources
from reconciler.core.actions import (Absent, Changed, Dead, ImageChanged, Kind, LimitsChanged,
                                     NotInSpec, NotRunning, PolicyRestart, SpecChanged)
from reconciler.core.plan import Observed, ObservedContainer, limits_change, plan
from reconciler.core.restart import RestartPolicy
from reconciler.core.spec import load_stack

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "specs" / "stack.schema.json").read_text())
IMG = "127.0.0.1:5000/busybox:latest"
ID = "sha256:" + "a" * 64
NEW_ID = "sha256:" + "b" * 64


def stack(containers: str, extra: str = "", name: str = "shop"):
    text = f"stack: {name}\n{extra}\ncontainers:\n" + containers
    return load_stack([("stack.yaml", text)], SCHEMA, {}, subnet="10.88.0.0/16", host_cpus=2)


WEB_DB = f"""\
  db:
    image: {IMG}
    memory: 64m
  web:
    image: {IMG}
    env: {{MODE: prod}}
    depends_on: [db]
"""


def converged(s, status="running", **changes) -> dict[str, ObservedContainer]:
    """Observed containers exactly as `apply` of stack `s` leaves them (then changed)."""
    out = {}
    for spec in s.containers.values():
        if spec.state == "absent":
            continue
        c = ObservedContainer(
            name=spec.container_name, id=spec.name * 8, stack=s.name, service=spec.name,
            spec_hash=spec.spec_hash, spec=spec.hashed_fields(), image_digest=ID,
            status=status if spec.state == "running" else "created", exit_code=None,
            resources=spec.resources)
        out[c.name] = dataclasses.replace(c, **changes.get(spec.name, {}))
    return out


def observed(containers=None, images=None):
    return Observed(images={IMG: ID} if images is None else images, containers=containers or {})


def summary(actions):
    return [(a.kind, a.target, a.cause) for a in actions]


def deps(actions):
    return {a.id: set(a.deps) for a in actions}


# --- from empty ------------------------------------------------------------------------------


def test_empty_host_pulls_creates_and_starts_in_dependency_order():
    s = stack(WEB_DB)
    actions = plan(s, observed(images={}))
    assert summary(actions) == [
        ("pull", IMG, "not present"),
        ("create", "shop-db", "not found"),
        ("start", "shop-db", "new container"),
        ("create", "shop-web", "not found"),
        ("start", "shop-web", "new container"),
    ]
    d = deps(actions)
    assert d["create:shop-db"] == {f"pull:{IMG}"}
    assert d["start:shop-web"] == {"create:shop-web", "start:shop-db"}


def test_image_present_locally_is_not_pulled():
    s = stack(WEB_DB)
    assert [a.kind for a in plan(s, observed())] == ["create", "start", "create", "start"]


def test_converged_stack_plans_nothing():
    s = stack(WEB_DB)
    assert plan(s, observed(converged(s))) == []
    assert plan(s, observed(converged(s)), restart_policies=True) == []


# --- images ----------------------------------------------------------------------------------


def test_pull_policy_always_pulls_even_when_present():
    s = stack(WEB_DB, extra="pull_policy: always")
    assert summary(plan(s, observed(converged(s)))) == [("pull", IMG, "pull policy: always")]


def test_pull_policy_never_does_not_pull_a_missing_image():
    s = stack(WEB_DB, extra="pull_policy: never")
    assert [a.kind for a in plan(s, observed(images={}))] == ["create", "start", "create", "start"]


def test_per_image_pull_policy_overrides_the_stack_policy():
    s = stack(WEB_DB, extra=f"pull_policy: never\nimages:\n  - {{ref: '{IMG}', pull: always}}")
    assert summary(plan(s, observed(converged(s))))[0] == ("pull", IMG, "pull policy: always")


def test_image_removed_locally_is_pulled_and_containers_wait_for_the_pull():
    s = stack(WEB_DB)
    assert summary(plan(s, observed(converged(s), images={}))) == [("pull", IMG, "not present")]


def test_image_state_absent_is_removed_after_its_containers():
    s = stack(f"  web:\n    image: {IMG}\n", extra="images:\n  - {ref: old/app:1.0, state: absent}")
    obs = converged(s)
    obs["shop-old"] = ObservedContainer("shop-old", "old", "shop", "old", status="exited")
    actions = plan(s, observed(obs, images={IMG: ID, "old/app:1.0": NEW_ID}))
    assert summary(actions) == [("remove", "shop-old", "not in spec"),
                                ("remove_image", "old/app:1.0", "state: absent")]
    assert deps(actions)["remove_image:old/app:1.0"] == {"remove:shop-old"}


def test_image_state_absent_and_not_present_plans_nothing():
    s = stack(f"  web:\n    image: {IMG}\n", extra="images:\n  - {ref: old/app:1.0, state: absent}")
    assert plan(s, observed(converged(s))) == []


# --- recreate --------------------------------------------------------------------------------


def test_image_digest_changed_recreates():
    s = stack(WEB_DB)
    actions = plan(s, observed(converged(s), images={IMG: NEW_ID}))
    assert summary(actions) == [("recreate", "shop-db", "image digest changed"),
                                ("recreate", "shop-web", "image digest changed")]
    assert deps(actions)["recreate:shop-web"] == {"recreate:shop-db"}
    assert actions[0].details["start"] is True


def test_env_change_recreates_only_that_container():
    old, new = stack(WEB_DB), stack(WEB_DB.replace("MODE: prod", "MODE: dev"))
    assert summary(plan(new, observed(converged(old)))) == [("recreate", "shop-web", "spec changed: env")]


@pytest.mark.parametrize("change, cause", [
    ("    command: sleep 1000\n", "spec changed: command"),
    ("    entrypoint: [/bin/sh, -c]\n", "spec changed: entrypoint"),
    ("    working_dir: /tmp\n", "spec changed: working_dir"),
    ("    user: '1000'\n", "spec changed: user"),
    ("    hostname: other\n", "spec changed: hostname"),
    ("    disk: 1g\n", "spec changed: disk"),
    ("    ip: 10.88.0.10\n", "spec changed: ip"),
    ("    mac: '02:42:0a:58:00:0a'\n", "spec changed: mac"),
    ("    ports: ['8080:80']\n", "spec changed: ports"),
    ("    volumes: ['/srv:/srv:ro']\n", "spec changed: volumes"),
    ("    network: none\n", "spec changed: network"),
    ("    network: host\n", "spec changed: hostname, network"),
    ("    stop_signal: SIGINT\n", "spec changed: stop_signal"),
    ("    stop_grace_period: 30s\n", "spec changed: stop_grace_period"),
    ("    labels: {tier: front}\n", "spec changed: labels"),
    (f"    image: {IMG.replace('latest', 'v2')}\n", "spec changed: image"),
    ("    command: sleep 1000\n    env: {A: b}\n", "spec changed: command, env"),
])
def test_every_recreating_field_is_named_in_the_cause(change, cause):
    base = f"  web:\n    image: {IMG}\n"
    old = stack(base)
    new_text = base + change if "image:" not in change else f"  web:\n{change}"
    new = stack(new_text)
    actions = plan(new, observed(converged(old), images={IMG: ID, IMG.replace("latest", "v2"): ID}))
    assert summary(actions) == [("recreate", "shop-web", cause)]


def test_recreate_without_the_old_spec_label_still_says_the_spec_changed():
    old, new = stack(WEB_DB), stack(WEB_DB.replace("MODE: prod", "MODE: dev"))
    obs = converged(old, web={"spec": None})
    assert summary(plan(new, observed(obs))) == [("recreate", "shop-web", "spec changed")]


def test_missing_hash_label_recreates():
    s = stack(WEB_DB)
    obs = converged(s, web={"spec_hash": None})
    assert summary(plan(s, observed(obs))) == [("recreate", "shop-web", "no spec hash label")]


def test_unknown_hash_version_recreates():
    s = stack(WEB_DB)
    obs = converged(s, web={"spec_hash": "v0:1234"})
    assert summary(plan(s, observed(obs))) == [("recreate", "shop-web", "spec hash version v0 unknown")]


def test_spec_and_image_change_together_name_both_causes():
    old, new = stack(WEB_DB), stack(WEB_DB.replace("MODE: prod", "MODE: dev"))
    actions = plan(new, observed(converged(old, db={"image_digest": ID}), images={IMG: NEW_ID}))
    assert ("recreate", "shop-web", "spec changed: env; image digest changed") in summary(actions)


def test_recreate_of_a_stopped_service_does_not_start_it():
    base = f"  web:\n    image: {IMG}\n    state: stopped\n"
    old, new = stack(base), stack(base + "    env: {A: b}\n")
    [action] = plan(new, observed(converged(old)))
    assert action.kind == "recreate" and action.details["start"] is False


# --- limits in place ---------------------------------------------------------------------------


@pytest.mark.parametrize("before, after, cause", [
    ("memory: 64m", "memory: 128m", "memory 64m -> 128m"),
    ("memory: 64m", "", "memory 64m -> unlimited"),
    ("pids: 100", "pids: 200", "pids 100 -> 200"),
    ("cpus: 0.5", "cpus: 1", "cpus 0.5 -> 1"),
    ("cpuset: '0'", "cpuset: '0-1'", "cpuset 0 -> 0-1"),
    ("cpu_quota: 50000", "cpu_quota: 20000", "cpu_quota 50000 -> 20000"),
    ("memory: 64m\n    memory_swap: 128m", "memory: 64m\n    memory_swap: -1", "memory_swap 128m -> unlimited"),
    ("memory: 64m\n    pids: 10", "memory: 32m\n    pids: 20", "memory 64m -> 32m, pids 10 -> 20"),
])
def test_limit_changes_are_applied_in_place(before, after, cause):
    old = stack(f"  web:\n    image: {IMG}\n    {before}\n")
    new = stack(f"  web:\n    image: {IMG}\n    {after}\n")
    assert old.containers["web"].spec_hash == new.containers["web"].spec_hash
    assert summary(plan(new, observed(converged(old)))) == [("update_resources", "shop-web", cause)]


def test_restart_policy_change_recreates_the_container():
    # the container's monitor enforces its policy (as `run --restart`): a new one carries the
    # new policy, as compose recreates; the default keeps the hash of specs without one
    old = stack(f"  web:\n    image: {IMG}\n")
    new = stack(f"  web:\n    image: {IMG}\n    restart: always\n")
    assert summary(plan(new, observed(converged(old)))) == [("recreate", "shop-web", "spec changed: restart")]
    assert stack(f"  web:\n    image: {IMG}\n    restart: \"no\"\n").containers["web"].spec_hash == \
        old.containers["web"].spec_hash


def test_unknown_current_limits_are_not_compared():
    s = stack(WEB_DB)
    assert plan(s, observed(converged(s, db={"resources": None}))) == []


def test_limits_change_text_mentions_swap_only_when_set_explicitly():
    assert limits_change(Resources(memory=64 << 20, memory_swap=128 << 20),
                         Resources(memory=128 << 20, memory_swap=256 << 20)) == "memory 64m -> 128m"


# --- running state -----------------------------------------------------------------------------


@pytest.mark.parametrize("policy, code, by_hand, started", [
    ("no", 1, False, False), ("no", 0, False, False),            # a one-shot job: it ran
    ("on-failure", 0, False, False), ("on-failure", 1, False, True),
    ("on-failure:3", 1, True, False),
    ("unless-stopped", 0, True, False), ("unless-stopped", 137, False, True),
    ("always", 0, False, True), ("always", 0, True, True),
])
def test_apply_starts_an_exited_container_unless_its_policy_leaves_it_stopped(policy, code, by_hand, started):
    s = stack(f"  web:\n    image: {IMG}\n    restart: {policy}\n")
    obs = converged(s, web={"status": "exited", "exit_code": code, "manually_stopped": by_hand})
    expected = [("start", "shop-web", f"not running: exited ({code})")] if started else []
    assert summary(plan(s, observed(obs))) == expected
    if not started:         # plan and watch agree: converged
        assert plan(s, observed(obs), restart_policies=True) == []


def test_a_one_shot_job_runs_again_when_its_spec_changes():
    old = stack(f"  job:\n    image: {IMG}\n    command: [echo, one]\n")
    new = stack(f"  job:\n    image: {IMG}\n    command: [echo, two]\n")
    obs = converged(old, job={"status": "exited", "exit_code": 0})
    assert plan(old, observed(obs)) == []
    assert summary(plan(new, observed(obs))) == [("recreate", "shop-job", "spec changed: command")]


def test_dead_container_is_recreated():
    s = stack(WEB_DB)
    assert summary(plan(s, observed(converged(s, web={"status": "dead"})))) == [
        ("recreate", "shop-web", "dead (left half-made or half-removed)")]


def test_created_container_is_started():
    s = stack(WEB_DB)
    obs = converged(s, status="created")
    actions = plan(s, observed(obs))
    assert summary(actions) == [("start", "shop-db", "not running"), ("start", "shop-web", "not running")]
    assert deps(actions)["start:shop-web"] == {"start:shop-db"}


@pytest.mark.parametrize("policy, code, count, cause", [
    ("always", 1, 0, "exited (1), restart policy always"),
    ("always", 0, 5, "exited (0), restart policy always"),
    ("unless-stopped", 137, 0, "exited (137), restart policy unless-stopped"),
    ("on-failure", 1, 9, "exited (1), restart policy on-failure"),
    ("on-failure:3", 2, 2, "exited (2), restart policy on-failure:3"),
    ("on-failure:3", 2, 3, None),
    ("on-failure", 0, 0, None),
    ("no", 1, 0, None),
])
def test_watch_restarts_per_policy(policy, code, count, cause):
    s = stack(f"  web:\n    image: {IMG}\n    restart: {policy}\n")
    obs = converged(s, web={"status": "exited", "exit_code": code, "restart_count": count})
    expected = [("start", "shop-web", cause)] if cause else []
    actions = plan(s, observed(obs), restart_policies=True)
    assert summary(actions) == expected
    if cause:   # the watcher decides on these fields, never on the text
        assert actions[0].reason == PolicyRestart("exited", code, RestartPolicy.parse(policy), count)


def test_watch_leaves_a_container_stopped_by_hand_but_apply_starts_it():
    s = stack(f"  web:\n    image: {IMG}\n    restart: always\n")
    obs = converged(s, web={"status": "exited", "exit_code": 0, "manually_stopped": True})
    assert plan(s, observed(obs), restart_policies=True) == []
    assert summary(plan(s, observed(obs))) == [("start", "shop-web", "not running: exited (0)")]


def test_watch_starts_a_container_never_started_even_with_policy_no():
    s = stack(f"  web:\n    image: {IMG}\n")
    assert summary(plan(s, observed(converged(s, status="created")), restart_policies=True)) == [
        ("start", "shop-web", "not running")]


def test_state_stopped_stops_dependents_first():
    s = stack(WEB_DB.replace("    memory: 64m\n", "    memory: 64m\n    state: stopped\n")
              + "    state: stopped\n")
    obs = {n: dataclasses.replace(c, status="running") for n, c in converged(s).items()}
    actions = plan(s, observed(obs))
    assert summary(actions) == [("stop", "shop-web", "state: stopped"), ("stop", "shop-db", "state: stopped")]
    assert deps(actions)["stop:shop-db"] == {"stop:shop-web"}


def test_state_stopped_and_exited_plans_nothing():
    s = stack(f"  web:\n    image: {IMG}\n    state: stopped\n")
    assert plan(s, observed(converged(s, web={"status": "exited", "exit_code": 0}))) == []


def test_state_stopped_and_missing_is_created_not_started():
    s = stack(f"  web:\n    image: {IMG}\n    state: stopped\n")
    assert summary(plan(s, observed())) == [("create", "shop-web", "not found")]


# --- removal and ownership -------------------------------------------------------------------


def test_container_not_in_spec_is_stopped_then_removed():
    old, new = stack(WEB_DB), stack(WEB_DB.split("  web:")[0])
    actions = plan(new, observed(converged(old)))
    assert summary(actions) == [("stop", "shop-web", "not in spec"), ("remove", "shop-web", "not in spec")]
    assert deps(actions)["remove:shop-web"] == {"stop:shop-web"}


def test_exited_container_not_in_spec_is_only_removed():
    old, new = stack(WEB_DB), stack(WEB_DB.split("  web:")[0])
    obs = converged(old, web={"status": "exited", "exit_code": 0})
    assert summary(plan(new, observed(obs))) == [("remove", "shop-web", "not in spec")]


def test_state_absent_removes_dependents_first():
    s = stack(WEB_DB.replace("    memory: 64m\n", "    memory: 64m\n    state: absent\n")
              + "    state: absent\n")
    old = stack(WEB_DB)
    actions = plan(s, observed(converged(old)))
    assert [a.target for a in actions if a.kind == "stop"] == ["shop-web", "shop-db"]
    assert all(a.cause == "state: absent" for a in actions)
    # the order is enforced, not only listed: stops run in parallel where nothing depends
    stop_db = next(a for a in actions if a.id == "stop:shop-db")
    stop_web = next(a for a in actions if a.id == "stop:shop-web")
    assert stop_db.deps == ("stop:shop-web",) and stop_web.deps == ()


def test_state_absent_and_missing_plans_nothing():
    s = stack(f"  web:\n    image: {IMG}\n    state: absent\n")
    assert plan(s, observed()) == []


def test_containers_of_other_stacks_and_unlabelled_ones_are_never_touched():
    s = stack(WEB_DB)
    obs = converged(s)
    obs["blog-web"] = ObservedContainer("blog-web", "x", stack="blog", service="web")
    obs["handmade"] = ObservedContainer("handmade", "y")
    assert plan(s, observed(obs)) == []


def test_foreign_container_holding_our_name_is_not_removed():
    s = stack(WEB_DB)
    obs = converged(s)
    obs["shop-web"] = ObservedContainer("shop-web", "z", stack=None)
    actions = plan(s, observed(obs))
    assert summary(actions) == [("create", "shop-web", "not found"), ("start", "shop-web", "new container")]
    assert not any(a.kind in ("stop", "remove", "recreate") for a in actions)


def test_creates_wait_for_removals_that_free_addresses():
    old = stack(f"  a:\n    image: {IMG}\n    ip: 10.88.0.5\n")
    new = stack(f"  b:\n    image: {IMG}\n    ip: 10.88.0.5\n")
    actions = plan(new, observed(converged(old)))
    assert summary(actions) == [("stop", "shop-a", "not in spec"), ("remove", "shop-a", "not in spec"),
                                ("create", "shop-b", "not found"), ("start", "shop-b", "new container")]
    assert deps(actions)["create:shop-b"] == {"remove:shop-a"}


def test_network_container_peer_is_an_implicit_dependency():
    s = stack(f"  app:\n    image: {IMG}\n  side:\n    image: {IMG}\n    network: container:app\n")
    actions = plan(s, observed())
    assert s.containers["side"].network == "container:shop-app"
    assert deps(actions)["start:shop-side"] == {"create:shop-side", "start:shop-app"}


def test_actions_only_depend_on_earlier_actions():
    old = stack(WEB_DB + f"  gone:\n    image: {IMG}\n")
    new = stack(WEB_DB.replace("MODE: prod", "MODE: x").replace("64m", "96m"))
    actions = plan(new, observed(converged(old, db={"status": "exited", "exit_code": 3}), images={}))
    seen = set()
    for a in actions:
        assert set(a.deps) <= seen, a
        seen.add(a.id)


# --- reasons as data: what code decides on, the cause derived from it ---------------------------


def _reasons_case(name):
    old, new = stack(WEB_DB), stack(WEB_DB.replace("MODE: prod", "MODE: dev").replace("64m", "96m"))
    gone = stack(WEB_DB.split("  web:")[0])
    cases = {
        "spec and image": (new, observed(converged(old, db={"image_digest": ID}), images={IMG: NEW_ID}),
                           False, ("recreate", "shop-web"),
                           Changed((SpecChanged(("env",)), ImageChanged(ID, NEW_ID)))),
        "limits": (new, observed(converged(old)), False, ("update_resources", "shop-db"),
                   LimitsChanged(old.containers["db"].resources, new.containers["db"].resources)),
        "dead": (old, observed(converged(old, web={"status": "dead"})), False, ("recreate", "shop-web"),
                 Changed((Dead(),))),
        "exited": (stack(WEB_DB + "    restart: always\n"),
                   observed(converged(stack(WEB_DB + "    restart: always\n"), web={"status": "exited", "exit_code": 7})),
                   False, ("start", "shop-web"), NotRunning("exited", 7)),
        "not in spec": (gone, observed(converged(old)), False, ("stop", "shop-web"), NotInSpec()),
        "absent": (stack(WEB_DB + "    state: absent\n"), observed(converged(old)), False,
                   ("remove", "shop-web"), Absent()),
    }
    return cases[name]


@pytest.mark.parametrize("name", ["spec and image", "limits", "dead", "exited", "not in spec", "absent"])
def test_reasons_are_values(name):
    desired, obs, policies, (kind, target), reason = _reasons_case(name)
    action = next(a for a in plan(desired, obs, restart_policies=policies)
                  if (a.kind, a.target) == (kind, target))
    assert action.kind is Kind(kind)
    assert action.reason == reason and action.cause == str(reason)
