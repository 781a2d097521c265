"""The spec's healthcheck and depends_on conditions: parsed into the model, mistakes reported
at file:line, and the healthcheck part of what a container is created from (its hash)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from reconciler.core.errors import SpecError
from reconciler.core.spec import load_stack
from reconciler.core.spec.model import HealthcheckSpec

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "specs" / "stack.schema.json").read_text())


def load(text):
    return load_stack([("stack.yaml", textwrap.dedent(text))], SCHEMA, {}, subnet="10.88.0.0/16", host_cpus=2)


GOOD = """\
    stack: s
    containers:
      db:
        image: reg/busybox
        healthcheck:
          test: [CMD-SHELL, "test -f /tmp/ok"]
          interval: 500ms
          timeout: 2s
          retries: 2
          start_period: 1m30s
      job:
        image: reg/busybox
      web:
        image: reg/busybox
        depends_on:
          db: {condition: service_healthy}
          job: {condition: service_completed_successfully}
    """


def test_healthcheck_and_conditions_in_the_model():
    stack = load(GOOD)
    db, web = stack.containers["db"], stack.containers["web"]
    assert db.healthcheck == HealthcheckSpec(test=("CMD-SHELL", "test -f /tmp/ok"), interval=0.5, timeout=2.0,
                                             retries=2, start_period=90.0)
    assert web.depends_on == ("db", "job")
    assert web.condition("db") == "service_healthy"
    assert web.condition("job") == "service_completed_successfully"
    assert db.condition("anything") == "service_started"
    assert list(stack.containers) == ["db", "job", "web"]
    assert db.hashed_fields()["healthcheck"]["interval"] == 0.5
    assert "healthcheck" not in web.hashed_fields()      # specs without one keep their hash


def test_list_form_and_string_test():
    stack = load("""\
        stack: s
        containers:
          a: {image: reg/x, healthcheck: {test: "wget -q localhost", disable: false}}
          b: {image: reg/x, depends_on: [a]}
        """)
    assert stack.containers["a"].healthcheck.test == "wget -q localhost"
    assert stack.containers["b"].conditions == ()


@pytest.mark.parametrize("snippet,message", [
    ("healthcheck: {test: [FOO, x]}", "must start with CMD, CMD-SHELL or NONE"),
    ("healthcheck: {test: true}", "containers.a.healthcheck.test"),
    ("healthcheck: {interval: 5 parsecs}", "is not a duration"),
    ("healthcheck: {interval: 0}", "must be longer than 0"),
    ("healthcheck: {retries: 0}", "containers.a.healthcheck.retries"),
    ("healthcheck: {tset: [CMD, x]}", "tset"),
    ("depends_on: {b: {condition: service_ready}}", "is not one of"),
    ("depends_on: {nope: {condition: service_healthy}}", "depends on unknown container"),
])
def test_mistakes_are_reported_with_their_line(snippet, message):
    with pytest.raises(SpecError) as info:
        load(f"""\
            stack: s
            containers:
              b: {{image: reg/x}}
              a:
                image: reg/x
                {snippet}
            """)
    text = str(info.value)
    assert message in text and "stack.yaml:" in text, text
