"""A 20-service compose file, `docker-mini apply -f compose.yaml` beside `docker-compose up -d`
(docker-compose 1.29 + Docker 20.10 on a private dockerd, bench.dockerd), the same file for both:

  web        busybox httpd publishing a host port, serving a named volume read-only; it waits
             for db to be healthy (depends_on condition: service_healthy)
  db         a `sleep`-style service writing into the named volume, with a healthcheck (1 s interval)
  check1-4   `sleep`-style services with a healthcheck, depending on db
  worker1-14 `sleep`-style services depending on db (list form)

Every service has mem_limit 16m; the `sleep`-style ones exit on SIGTERM, web has a 1 s grace.
Only keys docker-mini's compose front end maps are used (README, "Compose files").

  cold apply       `docker-mini apply -f compose.yaml -p P` on a fresh root holding only the image
  no-op re-apply   the same again: nothing to do
  docker-compose   `up -d` with the image pulled and nothing else (it creates the project's
                   network and volume, as docker-mini creates its volume), and its no-op `up -d`

Targets: cold apply <= 0.5x `docker-compose up -d`; no-op re-apply <= 0.3 s.
Runs (interleaved, medians): BENCH_COMPOSE_RUNS (default 3); no-op re-applies per run:
BENCH_COMPOSE_NOOP_RUNS (default 3).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import docker_mini_command, reap_docker_mini_root, scratch, timed, unmount_under
from bench.dockerd import Dockerd, optional_dockerd

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_COMPOSE_RUNS", "3"))
NOOP_RUNS = int(os.environ.get("BENCH_COMPOSE_NOOP_RUNS", "3"))
APPLY_VS_UP, NOOP_TARGET = 0.5, 0.3
SERVICES = 20
BRIDGE, SUBNET = "dmbcomp0", "10.233.0.0/24"
POOLS = [{"base": "10.233.64.0/18", "size": 24}]     # where user networks of this root go
PROJECT = "dmbcompose"
DM_PORT, COMPOSE_PORT = 18431, 18432               # one each: a lingering proxy cannot collide

SLEEPER = "[sh, -c, \"trap 'exit 0' TERM; sleep 3600 & wait\"]"


def compose_text(n: int = SERVICES) -> str:
    """The compose file, as people write it: anchors, merge keys, ${VAR} interpolation, short syntax."""
    lines = [
        "version: '2.4'",
        "x-base: &base",
        "  image: ${BENCH_IMAGE}",
        "  mem_limit: 16m",
        "x-sleeper: &sleeper",
        "  <<: *base",
        f"  command: {SLEEPER}",
        "x-health: &health",
        "  test: [CMD, 'true']",
        "  interval: 1s",
        "  timeout: 2s",
        "  retries: 3",
        "services:",
        "  web:",
        "    <<: *base",
        "    command: [httpd, -f, -p, '80', -h, /www]",
        "    stop_grace_period: 1s       # httpd as PID 1 ignores SIGTERM",
        "    ports: ['${WEB_PORT}:80']",
        "    volumes: ['content:/www:ro']",
        "    depends_on:",
        "      db:",
        "        condition: service_healthy",
        "  db:",
        "    <<: *sleeper",
        "    volumes:",
        "      - type: volume",
        "        source: content",
        "        target: /content",
        "    environment:",
        "      ROLE: db",
        "    healthcheck: *health",
    ]
    checks = 4
    for i in range(1, checks + 1):
        lines += [f"  check{i}:", "    <<: *sleeper", "    healthcheck: *health", "    depends_on: [db]"]
    for i in range(1, n - 2 - checks + 1):
        lines += [f"  worker{i}:", "    <<: *sleeper", "    environment:", f"      - WORKER={i}",
                  "    depends_on: [db]"]
    lines += ["volumes:", "  content: {}"]
    return "\n".join(lines) + "\n"


def _tail(proc: subprocess.CompletedProcess, lines: int = 6) -> str:
    return "\n      ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-lines:])


def _checked(cmd: list[str], what: str, **kw) -> float:
    t, proc = timed(cmd, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}:\n      {_tail(proc)}")
    return t


def docker_mini_once(work: Path, ref: str, run: int, results: dict) -> None:
    """Cold apply and no-op re-applies on a fresh root, then down -v (untimed)."""
    root = work / f"dm-root-{run}"
    config = work / "dm-constants.json"
    config.write_text(json.dumps({"bridge-name": BRIDGE, "bridge-subnet": SUBNET,
                                  "default-address-pools": POOLS}))
    base = [*docker_mini_command(), "--root", str(root), "--config", str(config)]
    project = work / "project"
    env = {**os.environ, "BENCH_IMAGE": ref, "WEB_PORT": str(DM_PORT)}
    file_args = ["-f", str(project / "compose.yaml"), "-p", PROJECT]
    try:
        _checked([*base, "pull", "-q", ref], "pull", cwd=REPO)
        results["apply"].append(_checked([*base, "apply", *file_args], "docker-mini apply", cwd=REPO, env=env))
        for _ in range(NOOP_RUNS):
            t, proc = timed([*base, "apply", *file_args], cwd=REPO, env=env)
            if proc.returncode != 0 or "nothing to do" not in proc.stdout:
                raise RuntimeError(f"re-apply was not a no-op (exit {proc.returncode}):\n      {_tail(proc)}")
            results["noop"].append(t)
    finally:
        proc = subprocess.run([*base, "down", "-v", *file_args], capture_output=True, text=True, cwd=REPO, env=env)
        if proc.returncode != 0:
            print(f"  docker-mini down -v exited {proc.returncode}:\n      {_tail(proc)}")
        subprocess.run([*base, "network", "prune", "-f"], capture_output=True, cwd=REPO)
        for note in reap_docker_mini_root(root, BRIDGE):
            print(f"  cleanup after docker-mini: {note} (down did not remove it): removed")
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


def compose_once(work: Path, docker: Dockerd, ref: str, results: dict) -> None:
    """`docker-compose up -d` of the project, a no-op `up -d`, then `down -v` (untimed)."""
    env = {**docker.env, "BENCH_IMAGE": ref, "WEB_PORT": str(COMPOSE_PORT)}
    cmd = ["docker-compose", "--ansi", "never", "-p", PROJECT, "-f", str(work / "project" / "compose.yaml")]
    try:
        results["up"].append(_checked([*cmd, "up", "-d"], "docker-compose up -d", env=env))
        results["noop"].append(_checked([*cmd, "up", "-d"], "docker-compose up -d (again)", env=env))
    finally:
        proc = subprocess.run([*cmd, "down", "-v", "-t", "0"], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"  docker-compose down -v exited {proc.returncode}:\n      {_tail(proc)}")


def _runs(xs: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


def _target(label: str, value: float, target: float) -> bool:
    ok = value <= target
    print(f"  {label} = {value:.2f} (target <= {target:.2f}){'' if ok else '  MISSED'}")
    return ok


def report(dm: dict, compose: dict, compose_error: str | None) -> bool:
    med = statistics.median
    print(f"compose: {SERVICES} busybox services (httpd with a port and a named volume, a healthcheck on 5, "
          "depends_on incl. service_healthy); CLI wall times, medians")
    ok = True
    if dm["apply"]:
        print(f"  docker-mini    apply -f compose.yaml  cold {med(dm['apply']):6.2f}s (runs {_runs(dm['apply'])})"
              + (f"   no-op re-apply {med(dm['noop']):.3f}s (runs {_runs(dm['noop'])})" if dm["noop"] else ""))
    else:
        print("  docker-mini: no cold apply completed")
        ok = False
    if compose["up"]:
        print(f"  docker-compose up -d                 cold {med(compose['up']):6.2f}s (runs {_runs(compose['up'])})"
              + (f"   no-op up -d {med(compose['noop']):.3f}s (runs {_runs(compose['noop'])})"
                 if compose["noop"] else ""))
    else:
        print(f"  docker-compose: not measured{f': {compose_error}' if compose_error else ''}")
        ok = False
    if dm["noop"] and compose["noop"]:
        print(f"  no-op: docker-mini / docker-compose = {med(dm['noop']) / med(compose['noop']):.2f}")
    print("  targets:")
    if dm["apply"] and compose["up"]:
        ok &= _target("  docker-mini cold apply / docker-compose up -d", med(dm["apply"]) / med(compose["up"]),
                      APPLY_VS_UP)
    if dm["noop"]:
        ok &= _target("  docker-mini no-op re-apply (s)", med(dm["noop"]), NOOP_TARGET)
    else:
        print("    no-op re-apply: not measured")
        ok = False
    return ok


def main() -> int:
    sys.path.insert(0, str(REPO))
    from tests.fixtures.registry import ImageBuilder, start_registry

    dm: dict = {"apply": [], "noop": []}
    compose: dict = {"up": [], "noop": []}
    compose_error = None
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(scratch("dm-bench-compose-"))
        (work / "project").mkdir()
        (work / "project" / "compose.yaml").write_text(compose_text())
        reg = stack.enter_context(start_registry(work / "registry"))
        builder = ImageBuilder(reg, work / "images")
        ref = str(builder.push(builder.busybox_tag(), "bench/busybox", "latest"))
        docker, compose_error = optional_dockerd(stack, work / "docker", "docker-compose", pull=ref,
                                                 compose_missing="docker-compose is not installed (make deps-bench)")
        for run in range(RUNS):          # taking turns, so drift in the machine's load hits both alike
            try:
                docker_mini_once(work, ref, run, dm)
            except RuntimeError as e:
                print(f"  docker-mini: {e}", flush=True)
            if docker:
                try:
                    compose_once(work, docker, ref, compose)
                except RuntimeError as e:
                    print(f"  docker-compose: {e}", flush=True)
            print(f"  (run {run + 1} done)", flush=True)
    return 0 if report(dm, compose, compose_error) else 1


if __name__ == "__main__":
    sys.exit(main())
