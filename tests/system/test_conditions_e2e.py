"""depends_on conditions honoured by apply: a dependent starts only once its dependency is
healthy (apply runs the probes itself) or has exited 0; a dependency that fails its condition
fails its dependents with the cause, and the rest of the stack converges. A one-shot job is
converged once it has run: apply does not run it again until its spec changes."""

from __future__ import annotations

import json


def _state(dm, name) -> dict:
    return json.loads(dm("inspect", name).stdout)[0]["State"]


def _spec(path, image, services: str):
    path.write_text(f"stack: cond\ncontainers:\n{services}".replace("IMAGE", str(image)))
    return path


GOOD = """\
  db:
    image: IMAGE
    network: none
    command: [sh, -c, "sleep 2; touch /tmp/ready; exec sleep 1000"]
    healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 300ms, retries: 100}
  migrate:
    image: IMAGE
    network: none
    command: [sh, -c, "echo migrated"]
    depends_on: {db: {condition: service_healthy}}
  web:
    image: IMAGE
    network: none
    command: [sleep, "1000"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
"""


def test_dependents_start_after_healthy_and_completed(dmc, busybox_ref, tmp_path):
    spec = _spec(tmp_path / "stack.yaml", busybox_ref, GOOD)
    try:
        out = dmc("apply", "-f", str(spec)).stdout
        assert "wait_healthy" in out and "wait_completed" in out, out
        db, job, web = (_state(dmc, f"cond-{n}") for n in ("db", "migrate", "web"))
        assert db["Health"]["Status"] == "healthy" and db["Running"]
        assert job["Status"] == "exited" and job["ExitCode"] == 0
        assert web["Running"]
        # ordered: the job started once db was healthy, web once the job had finished
        healthy_at = db["Health"]["Log"][-1]["End"]
        assert job["StartedAt"] >= healthy_at and web["StartedAt"] >= job["FinishedAt"]

        # converged: the one-shot job is not run again
        again = dmc("apply", "-f", str(spec)).stdout
        assert "converged, nothing to do" in again, again
        assert dmc("plan", "-f", str(spec)).returncode == 0
        assert dmc("logs", "cond-migrate").stdout == "migrated\n"

        # ...until its spec changes
        _spec(spec, busybox_ref, GOOD.replace("echo migrated", "echo migrated again"))
        out = dmc("apply", "-f", str(spec)).stdout
        assert "recreate" in out and "cond-migrate" in out, out
        assert dmc("logs", "cond-migrate").stdout == "migrated again\n"
        assert _state(dmc, "cond-migrate")["ExitCode"] == 0
    finally:
        dmc("down", "-f", str(spec), check=False)


BAD = """\
  sick:
    image: IMAGE
    network: none
    command: [sleep, "1000"]
    healthcheck: {test: [CMD-SHELL, "echo not yet; exit 1"], interval: 200ms, retries: 2}
  failing-job:
    image: IMAGE
    network: none
    command: [sh, -c, "exit 3"]
  needs-sick:
    image: IMAGE
    network: none
    command: [sleep, "1000"]
    depends_on: {sick: {condition: service_healthy}}
  needs-job:
    image: IMAGE
    network: none
    command: [sleep, "1000"]
    depends_on: {failing-job: {condition: service_completed_successfully}}
  other:
    image: IMAGE
    network: none
    command: [sleep, "1000"]
"""


def test_a_failed_condition_fails_its_dependents_and_the_rest_converges(dmc, busybox_ref, tmp_path):
    spec = _spec(tmp_path / "stack.yaml", busybox_ref, BAD)
    try:
        r = dmc("apply", "-f", str(spec), check=False)
        text = r.stdout + r.stderr
        assert r.returncode != 0, text
        assert "cond-sick is not healthy: unhealthy after 2 failed probes" in text, text
        assert "not yet" in text, text
        assert "cond-failing-job did not complete successfully: it exited (3)" in text, text
        assert "start cond-needs-sick: needs wait_healthy:cond-sick, which failed" in text, text
        assert "start cond-needs-job: needs wait_completed:cond-failing-job, which failed" in text, text
        assert "Traceback" not in text
        assert _state(dmc, "cond-other")["Running"]
        assert not _state(dmc, "cond-needs-sick")["Running"]
        assert not _state(dmc, "cond-needs-job")["Running"]
    finally:
        dmc("down", "-f", str(spec), check=False)
