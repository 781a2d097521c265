"""Networking costs, docker-mini beside podman (netavark, its default bridge) and Docker 20.10
(a private dockerd, bench.dockerd), from one run:

  run --rm IMAGE true               on the default bridge; docker-mini also with --network none
  run --rm -p HOSTPORT:80 IMAGE true  a published port (each engine its own host port)
  network connect NET CONTAINER     a running container joins a user network (then disconnect,
                                    timed too); docker-mini and docker
  apply of 50 on a user network     a spec with top-level networks:, beside the same 50 on the
                                    default bridge (skipped, with a line, where specs lack networks:)

Targets: bridged run <= 1.6x docker-mini's --network none and <= 0.35x podman's bridged run;
with -p <= 0.4x podman's with -p. Runs are interleaved; medians and ratios are printed.
Runs: BENCH_NETWORK_RUNS (default 21), BENCH_CONNECT_RUNS (11), BENCH_NETWORK_APPLY_SIZE (50).
Podman's bridge, veths and firewall rules are taken back afterwards as dockerd's are.
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

from bench.common import interleaved, reap_docker_mini_root, scratch, timed, timed_run, unmount_under
from bench.dockerd import Footprint, HostSnapshot, optional_dockerd, restore_host
from bench.run import DockerMini, Podman, podman_ulimits

RUNS = int(os.environ.get("BENCH_NETWORK_RUNS", "21"))
CONNECT_RUNS = int(os.environ.get("BENCH_CONNECT_RUNS", "11"))
APPLY_SIZE = int(os.environ.get("BENCH_NETWORK_APPLY_SIZE", "50"))
REPO = Path(__file__).resolve().parent.parent
BRIDGED_VS_NONE, BRIDGED_VS_PODMAN, PORT_VS_PODMAN = 1.6, 0.35, 0.4
BRIDGE, SUBNET = "dmbnet0", "10.234.0.0/24"
POOLS = [{"base": "10.234.64.0/18", "size": 24}]
PORTS = {"docker-mini": 18441, "podman": 18442, "docker": 18443}
NET = "dmbench-net"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
# netavark's default network: bridge podman0 (10.88.0.0/16), host veths, NETAVARK-* chains
PODMAN_FOOTPRINT = Footprint(links=r"podman\d+|veth\d{1,6}",
                             rules=r"NETAVARK|\bpodman\d+\b|10\.88\.", chains="NETAVARK")


def _report(title: str, times: dict[str, list[float]]) -> dict[str, float]:
    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(title)
    for name, v in times.items():
        print(f"  {name:32s} median {med[name] * 1000:7.1f} ms   runs {' '.join(f'{x * 1000:.0f}' for x in v)}")
    return med


def _ratio(med: dict[str, float], a: str, b: str, target: float | None) -> bool:
    """Print med[a] / med[b] (with its target); whether the target holds (a missing peer fails it)."""
    label = f"{a} / {b}"
    if a not in med or b not in med:
        print(f"  {label:48s} = not measured")
        return target is None
    ratio = med[a] / med[b]
    ok = target is None or ratio <= target
    goal = "" if target is None else f" (target <= {target:.2f}){'' if ok else '  MISSED'}"
    print(f"  {label:48s} = {ratio:.2f}{goal}")
    return ok


def bench_bridged(dm: DockerMini, podman: Podman, docker, ref: str) -> bool:
    peers = {
        "docker-mini": lambda: dm("run", "--rm", ref, "true"),
        "docker-mini --network none": lambda: dm("run", "--rm", "--network", "none", ref, "true"),
        "podman": lambda: podman("run", "--rm", "--log-driver", "k8s-file", *podman_ulimits(), ref, "true"),
    }
    if docker:
        peers["docker"] = lambda: timed_run(docker.cli("run", "--rm", ref, "true"), env=docker.env)
    med = _report(f"run --rm IMAGE true on the default bridge ({RUNS} runs each, interleaved)",
                  interleaved(peers, RUNS))
    ok = _ratio(med, "docker-mini", "docker-mini --network none", BRIDGED_VS_NONE)
    ok &= _ratio(med, "docker-mini", "podman", BRIDGED_VS_PODMAN)
    _ratio(med, "docker-mini", "docker", None)
    return ok


def bench_ports(dm: DockerMini, podman: Podman, docker, ref: str) -> bool:
    peers = {
        "docker-mini": lambda: dm("run", "--rm", "-p", f"{PORTS['docker-mini']}:80", ref, "true"),
        "podman": lambda: podman("run", "--rm", "-p", f"{PORTS['podman']}:80", "--log-driver", "k8s-file",
                                 *podman_ulimits(), ref, "true"),
    }
    if docker:
        peers["docker"] = lambda: timed_run(docker.cli("run", "--rm", "-p", f"{PORTS['docker']}:80", ref, "true"),
                                            env=docker.env)
    med = _report(f"run --rm -p HOSTPORT:80 IMAGE true ({RUNS} runs each, interleaved)", interleaved(peers, RUNS))
    ok = _ratio(med, "docker-mini", "podman", PORT_VS_PODMAN)
    _ratio(med, "docker-mini", "docker", None)
    return ok


def _has_command(dm: DockerMini, *path: str) -> bool:
    proc = subprocess.run([*dm.base, *path[:-1], "--help"], capture_output=True, text=True)
    commands = proc.stdout.split("Commands:", 1)[-1] if "Commands:" in proc.stdout else ""
    return proc.returncode == 0 and any(line.split()[:1] == [path[-1]] for line in commands.splitlines())


def bench_connect(dm: DockerMini, docker, ref: str) -> bool:
    title = f"network connect NET CONTAINER of a running container ({CONNECT_RUNS} runs each, interleaved)"
    if not (_has_command(dm, "network", "connect") and _has_command(dm, "network", "disconnect")):
        print(f"{title}\n  docker-mini network connect/disconnect: not available")
        return True
    disconnect: dict[str, list[float]] = {}

    def cycle(name: str, cli) -> float:
        t = cli("network", "connect", NET, "nc")
        disconnect.setdefault(name, []).append(cli("network", "disconnect", NET, "nc"))
        return t

    peers = {}
    try:
        dm("network", "create", NET)
        dm("run", "-d", "--name", "nc", ref, *SLEEPER)
        peers["docker-mini"] = lambda: cycle("docker-mini", dm)
        if docker:
            docker_cli = lambda *a: timed_run(docker.cli(*a), env=docker.env)  # noqa: E731
            docker_cli("network", "create", NET)
            docker_cli("run", "-d", "--name", "nc", ref, *SLEEPER)
            peers["docker"] = lambda: cycle("docker", docker_cli)
        times = interleaved(peers, CONNECT_RUNS)
        for name in disconnect:       # the warm-up's disconnect is not one of the timed runs
            disconnect[name] = disconnect[name][1:]
        med = _report(title, times)
        _ratio(med, "docker-mini", "docker", None)
        dmed = _report("network disconnect NET CONTAINER (after each connect above)", disconnect)
        _ratio(dmed, "docker-mini", "docker", None)
    finally:
        subprocess.run([*dm.base, "rm", "-f", "nc"], capture_output=True)
        subprocess.run([*dm.base, "network", "rm", NET], capture_output=True)
        if docker:
            docker.run("rm", "-f", "nc", check=False)
            docker.run("network", "rm", NET, check=False)
    return True


def _spec(ref: str, n: int, network: str | None) -> str:
    stack = "netbench" if network else "bridgebench"
    lines = [f"stack: {stack}"]
    if network:
        lines += ["networks:", f"  {network}: {{}}"]
    lines.append("containers:")
    for i in range(n):
        lines += [f"  c{i}:", f"    image: {ref}", f"    command: {json.dumps(SLEEPER)}"]
        if network:
            lines.append(f"    networks: [{network}]")
    return "\n".join(lines) + "\n"


def bench_apply(dm: DockerMini, work: Path, ref: str) -> bool:
    n = APPLY_SIZE
    title = f"apply of {n} containers on a user network (cold: containers not there, image pulled)"
    on_net, on_bridge = work / "spec-net" / "stack.yaml", work / "spec-bridge" / "stack.yaml"
    for path, network in ((on_net, "benchnet"), (on_bridge, None)):
        path.parent.mkdir()
        path.write_text(_spec(ref, n, network))
    proc = subprocess.run([*dm.base, "plan", "-f", str(on_net)], capture_output=True, text=True, cwd=REPO)
    if proc.returncode not in (0, 2):
        why = [line.strip() for line in (proc.stderr.strip() or proc.stdout.strip()).splitlines()][:2]
        print(f"{title}\n  skipped: the spec's top-level networks: is not supported yet "
              f"({' '.join(why) if why else f'plan exited {proc.returncode}'})")
        return True
    times = {}
    try:
        for name, path in (("user network", on_net), ("default bridge", on_bridge)):
            t, proc = timed([*dm.base, "apply", "-f", str(path)], cwd=REPO)
            if proc.returncode != 0:
                tail = "\n      ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-6:])
                raise RuntimeError(f"apply of {n} on the {name} exited {proc.returncode}:\n      {tail}")
            down = timed_run([*dm.base, "down", "-f", str(path)], cwd=REPO)
            times[name] = (t, down)
    except RuntimeError as e:
        print(f"{title}\n  docker-mini: {e}")
        return False
    finally:
        for path in (on_net, on_bridge):
            subprocess.run([*dm.base, "down", "-f", str(path)], capture_output=True, cwd=REPO)
    print(title)
    for name, (t, down) in times.items():
        print(f"  docker-mini on the {name:14s} apply {t:6.2f}s ({t / n * 1000:.0f} ms/c)   down {down:6.2f}s")
    print(f"  user network / default bridge (apply)           = "
          f"{times['user network'][0] / times['default bridge'][0]:.2f}")
    return True


@contextlib.contextmanager
def podman_footprint_removed():
    """Podman's bridge, veths and firewall rules (made by netavark) taken back afterwards."""
    before = HostSnapshot.take()
    try:
        yield
    finally:
        for note in restore_host(before, PODMAN_FOOTPRINT):
            print(f"  podman cleanup: {note}")


def main() -> int:
    from bench.pull import push_image
    from tests.fixtures.registry import busybox_tar, start_registry

    for tool in ("podman", "runc", "conmon", "docker-registry", "busybox"):
        if not shutil.which(tool):
            print(f"network: {tool} is not installed", file=sys.stderr)
            return 1
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "reconciler")], capture_output=True)
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(scratch("dm-bench-network-"))
        stack.enter_context(podman_footprint_removed())
        reg = stack.enter_context(start_registry(work / "registry"))
        docker, _ = optional_dockerd(stack, work / "docker")
        config = work / "constants.json"
        config.write_text(json.dumps({"insecure-registries": [reg.addr], "bridge-name": BRIDGE,
                                      "bridge-subnet": SUBNET, "default-address-pools": POOLS}))
        push_image(reg.url, "bench/busybox", [busybox_tar()])
        ref = f"{reg.addr}/bench/busybox:latest"
        dm, podman = DockerMini(work, config), Podman(work)
        try:
            dm("pull", "-q", ref)
            podman("pull", "-q", "--tls-verify=false", ref)
            if docker:
                docker.run("pull", "-q", ref)
            ok = True
            for name, fn in (("bridged run", lambda: bench_bridged(dm, podman, docker, ref)),
                             ("run -p", lambda: bench_ports(dm, podman, docker, ref)),
                             ("network connect", lambda: bench_connect(dm, docker, ref)),
                             ("apply on a user network", lambda: bench_apply(dm, work, ref))):
                try:          # one failing part does not hide the others' figures
                    ok &= fn()
                except RuntimeError as e:
                    print(f"  {name}: failed: {e}", flush=True)
                    ok = False
            return 0 if ok and docker else 1
        finally:
            dm.cleanup()
            subprocess.run([*dm.base, "network", "prune", "-f"], capture_output=True)
            for note in reap_docker_mini_root(dm.root, BRIDGE):
                print(f"  cleanup: {note}: removed")
            unmount_under(dm.root)
            podman.cleanup()


if __name__ == "__main__":
    sys.exit(main())
