"""Compose files applied against the real registry: a project directory with compose.yaml and
.env, short and long syntax mixed, anchors, profiles, a named volume kept by `down` and removed
by `down -v`, and a refused key that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.stacks import LOOP, inspect, names, net, running_env, watch  # noqa: F401 (fixtures)

COMPOSE = """\
x-base: &base
  image: ${IMAGE}
  restart: unless-stopped
  stop_grace_period: 2s

services:
  web:
    <<: *base
    command: ["sh", "-c", "mkdir -p /www && echo $${GREETING} > /www/index.html && httpd -f -p 80 -h /www"]
    environment:
      GREETING: ${GREETING:-hello}
    networks:
      default:
        ipv4_address: ${WEB_IP}
    mem_limit: 32m
  app:
    <<: *base
    command: ["sh", "-c", "echo run >> /data/runs; {loop}"]
    environment:
      - MODE=${MODE-dev}
    volumes:
      - type: volume
        source: appdata
        target: /data
      - ./conf:/conf:ro
    tmpfs: /scratch
    healthcheck:
      test: ["CMD-SHELL", "test -s /data/runs"]
      interval: 5s
      retries: 2
    depends_on:
      web:
        condition: service_started
  debug:
    <<: *base
    command: ["sleep", "1000"]
    profiles: [debug]

volumes:
  appdata:
""".replace("{loop}", LOOP.replace("$", "$$"))


def project(tmp_path: Path, ref: str, ip: str) -> Path:
    d = tmp_path / "My Shop"
    d.mkdir()
    (d / "compose.yaml").write_text(COMPOSE)
    (d / ".env").write_text(f"IMAGE={ref}\nWEB_IP={ip}\nGREETING=from-dotenv\nMODE=prod\n")
    (d / "conf").mkdir()
    (d / "conf" / "app.conf").write_text("x=1\n")
    return d


def test_a_compose_project_applies_converges_and_goes_down(net, dmc, busybox_ref, tmp_path, root):
    d = project(tmp_path, str(busybox_ref), net[0])
    out = dmc("apply", "-f", str(d)).stdout
    assert "myshop: 5 done" in out, out                  # the directory's name, normalised
    assert names(dmc) == ["myshop-app", "myshop-web"]    # debug's profile is not active
    page = dmc("exec", "myshop-app", "wget", "-qO-", f"http://{net[0]}/").stdout
    assert page.strip() == "from-dotenv"                 # .env interpolated; $$ kept for the shell
    app = inspect(dmc, "myshop-app")
    assert "MODE=prod" in app["Config"]["Env"]
    assert dmc("healthcheck", "myshop-app").stdout.startswith("healthy")      # compose's healthcheck
    assert dmc("exec", "myshop-app", "cat", "/conf/app.conf").stdout == "x=1\n"
    assert "tmpfs" in dmc("exec", "myshop-app", "sh", "-c", "grep ' /scratch ' /proc/mounts").stdout
    assert inspect(dmc, "myshop-web")["HostConfig"]["Memory"] == 32 << 20
    vols = dmc("volume", "ls", "-q").stdout.split()
    assert vols == ["myshop_appdata"]
    assert json.loads(dmc("volume", "inspect", "myshop_appdata").stdout)[0]["Labels"] == {
        "io.docker-mini.stack": "myshop"}

    assert dmc("apply", "-f", str(d / "compose.yaml")).stdout.strip() == "myshop: converged, nothing to do"

    # a changed environment recreates app; its volume, and what it holds, survive that
    (d / ".env").write_text((d / ".env").read_text().replace("MODE=prod", "MODE=staging"))
    dmc("apply", "-f", str(d))
    assert (root / "volumes" / "myshop_appdata" / "_data" / "runs").read_text() == "run\nrun\n"

    # -p names a project whose file has no name:; the profile's service joins when asked for
    plan = dmc("plan", "-f", str(d), "-p", "other", check=False, env={"COMPOSE_PROFILES": "debug"})
    assert plan.returncode == 2 and "other-debug" in plan.stdout and "other-web" in plan.stdout
    plan = dmc("plan", "-f", str(d), "--project-name", "other", "--profile", "debug", check=False)
    assert plan.returncode == 2 and "other-debug" in plan.stdout

    dmc("down", "-f", str(d))
    assert names(dmc) == [] and dmc("volume", "ls", "-q").stdout.split() == ["myshop_appdata"]
    dmc("apply", "-f", str(d))
    assert (root / "volumes" / "myshop_appdata" / "_data" / "runs").read_text() == "run\nrun\nrun\n"
    out = dmc("down", "-v", "-f", str(d)).stdout
    assert out.rstrip().endswith("myshop: 4 done\nDeleted volume: myshop_appdata")
    assert names(dmc) == [] and dmc("volume", "ls", "-q").stdout.split() == []


def test_a_refused_key_is_reported_at_its_line_and_nothing_is_done(net, dmc, busybox_ref, tmp_path):
    d = project(tmp_path, str(busybox_ref), net[0])
    text = (d / "compose.yaml").read_text().replace("    mem_limit: 32m\n", "    mem_limit: 32m\n    build: .\n")
    (d / "docker-compose.yml").write_text(text)
    (d / "compose.yaml").unlink()
    out = dmc("apply", "-f", str(d), check=False)
    assert out.returncode == 1
    assert f"{d / 'docker-compose.yml'}:16 services.web.build: build: is not supported" in out.stderr
    assert "Traceback" not in out.stderr
    assert names(dmc) == []


def test_watch_keeps_a_compose_project_converged_and_rereads_its_env(watch, dmc, busybox_ref, tmp_path, net):
    d = project(tmp_path, str(busybox_ref), net[0])
    w = watch(d / "compose.yaml")
    w.wait_for("app running with MODE=prod", lambda: "MODE=prod" in running_env(dmc, "myshop-app"))
    (d / ".env").write_text((d / ".env").read_text().replace("MODE=prod", "MODE=changed"))
    w.wait_for("app recreated with the .env's new MODE", lambda: "MODE=changed" in running_env(dmc, "myshop-app"))
    assert w.stop() == 0
    dmc("down", "-v", "-f", str(d))
