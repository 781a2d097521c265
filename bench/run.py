"""`run --rm --network none IMAGE true` and `ps -a` with 50 containers, side by side:

  docker-mini run --rm --network none IMAGE true     the whole CLI, start-up included
  podman --runtime runc run --rm --network none      own --root/--runroot, cgroupfs, k8s-file logs,
                                                     --ulimit nofile/nproc this host allows (see
                                                     podman_ulimits)
  docker run --rm --network none                     Docker 20.10 (Debian's docker.io): a private
                                                     dockerd started for this run (bench.dockerd)
  floor: runc run of an equivalent bundle            no CLI, no overlay, no monitor

The image (a single-layer busybox, Cmd ["sh"]) is pushed to a local registry on 127.0.0.1 and
pulled by every engine beforehand. Runs are interleaved so a noisy moment hits everyone; medians
and ratios are printed. Targets: run median <= 0.65x podman's and <= 0.45x docker's; `ps -a` with
50 containers <= 1.3x podman's (docker's is printed beside it).
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

from bench.common import docker_mini_command, interleaved, reap_docker_mini_root, scratch, timed_run
from bench.dockerd import Dockerd, optional_dockerd

RUNS = int(os.environ.get("BENCH_RUN_RUNS", "31"))   # an odd count: the median is one run
PS_CONTAINERS = int(os.environ.get("BENCH_PS_CONTAINERS", "50"))
PS_RUNS = int(os.environ.get("BENCH_PS_RUNS", "10"))
REPO = Path(__file__).resolve().parent.parent
RUN_VS_PODMAN, RUN_VS_DOCKER, PS_VS_PODMAN = 0.65, 0.45, 1.3


class DockerMini:
    name = "docker-mini"

    def __init__(self, work: Path, config: Path):
        self.root = work / "dm-root"
        self.base = [*docker_mini_command(), "--root", str(self.root), "--config", str(config)]

    def __call__(self, *args: str) -> float:
        return timed_run([*self.base, *args], cwd=REPO)

    def cleanup(self) -> None:
        proc = subprocess.run([*self.base, "ps", "-aq", "--no-trunc"], capture_output=True, text=True)
        ids = proc.stdout.split()
        if ids:
            subprocess.run([*self.base, "rm", "-f", *ids], capture_output=True)
        for note in reap_docker_mini_root(self.root):
            print(f"  cleanup: {note} after rm -f: removed")


class Podman:
    name = "podman"

    def __init__(self, work: Path):
        self.root, self.runroot = work / "podman-root", work / "podman-runroot"
        self.base = ["podman", "--root", str(self.root), "--runroot", str(self.runroot),
                     "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "none", "--runtime", "runc"]

    def __call__(self, *args: str) -> float:
        return timed_run([*self.base, *args])

    def cleanup(self) -> None:
        subprocess.run([*self.base, "rm", "-af", "-t", "0"], capture_output=True)
        subprocess.run([*self.base, "system", "reset", "-f"], capture_output=True)


def podman_ulimits() -> list[str]:
    """Podman's default nofile and nproc are above what runc may set on this host (the hard
    nofile is 20000 and raising fails even for root; podman's own nproc ends up lower still):
    ask for the host's hard nofile and a small nproc, which changes nothing for `true`."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    out = ["--ulimit", "nproc=1024:1024"]
    if hard != resource.RLIM_INFINITY:
        out += ["--ulimit", f"nofile={hard}:{hard}"]
    return out


class RuncFloor:
    """`runc run` of a bundle equivalent to docker-mini's (same config builder, plain rootfs)."""
    name = "floor (runc run)"

    def __init__(self, work: Path, layer_tar: bytes):
        import io
        import tarfile

        from reconciler.core import ociconfig, ociprocess, ociusers
        self.dir = work / "floor"
        rootfs = self.dir / "rootfs"
        rootfs.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(layer_tar)) as tar:
            tar.extractall(rootfs)
        self.runc_root = self.dir / "runc"
        self.ociconfig, self.ociprocess, self.ociusers, self.n = ociconfig, ociprocess, ociusers, 0
        import resource
        self.hard = {"RLIMIT_NOFILE": resource.getrlimit(resource.RLIMIT_NOFILE)[1]}

    def __call__(self) -> float:
        self.n += 1
        cid = f"floor{os.getpid()}x{self.n}"
        bundle = self.dir / cid
        bundle.mkdir()
        process = self.ociprocess.process_spec({"config": {"Cmd": ["true"]}}, container_id=cid.ljust(12, "0"),
                                       command=None, entrypoint=None, env=[], workdir=None, user=None,
                                       hostname=None, stop_signal=None, tty=False)
        cfg = self.ociconfig.build_config(container_id=cid, process=process, exec_user=self.ociusers.ExecUser(0, 0),
                                   rootfs=str(self.dir / "rootfs"), host_rlimits=self.hard)
        (bundle / "config.json").write_text(json.dumps(cfg))
        try:
            return timed_run(["runc", "--root", str(self.runc_root), "run", "--bundle", str(bundle), cid],
                             stdin=subprocess.DEVNULL)
        finally:
            shutil.rmtree(bundle, ignore_errors=True)


def _medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in times.items() if v}


def _report(title: str, times: dict[str, list[float]]) -> dict[str, float]:
    med = _medians(times)
    print(title)
    for name, v in times.items():
        print(f"  {name:28s} median {med[name] * 1000:7.1f} ms   runs {' '.join(f'{x * 1000:.0f}' for x in v)}")
    return med


def _ratio(med: dict[str, float], peer: str, target: float | None) -> bool:
    """Print docker-mini's ratio to peer (with its target); whether the target holds."""
    if peer not in med:
        print(f"  docker-mini / {peer:6s} = not measured ({peer} did not run)")
        return target is None
    ratio = med["docker-mini"] / med[peer]
    if target is None:
        print(f"  docker-mini / {peer:6s} = {ratio:.2f}")
        return True
    ok = ratio <= target
    print(f"  docker-mini / {peer:6s} = {ratio:.2f} (target <= {target:.2f}){'' if ok else '  MISSED'}")
    return ok


def bench_run(dm: DockerMini, podman: Podman, floor: RuncFloor, ref: str, docker: Dockerd | None) -> bool:
    peers = {
        "docker-mini": lambda: dm("run", "--rm", "--network", "none", ref, "true"),
        "podman": lambda: podman("run", "--rm", "--network", "none", "--log-driver", "k8s-file",
                                 *podman_ulimits(), ref, "true"),
        floor.name: floor,
    }
    if docker:
        peers["docker"] = lambda: timed_run(docker.cli("run", "--rm", "--network", "none", ref, "true"),
                                            env=docker.env)
    times = interleaved(peers, RUNS)
    med = _report(f"run --rm --network none IMAGE true ({RUNS} runs each, interleaved)", times)
    ok = _ratio(med, "podman", RUN_VS_PODMAN)
    ok &= _ratio(med, "docker", RUN_VS_DOCKER)
    print(f"  docker-mini / floor  = {med['docker-mini'] / med[floor.name]:.2f}")
    return ok


def bench_ps(dm: DockerMini, podman: Podman, ref: str, docker: Dockerd | None) -> bool:
    for i in range(PS_CONTAINERS):
        dm("create", "--network", "none", "--name", f"ps{i}", ref, "true")
        podman("create", "--network", "none", "--name", f"ps{i}", ref, "true")
        if docker:
            docker.run("create", "--network", "none", "--name", f"ps{i}", ref, "true")
    peers = {"docker-mini": lambda: dm("ps", "-a"), "podman": lambda: podman("ps", "-a")}
    if docker:
        peers["docker"] = lambda: timed_run(docker.cli("ps", "-a"), env=docker.env)
    times = interleaved(peers, PS_RUNS)
    med = _report(f"ps -a with {PS_CONTAINERS} containers ({PS_RUNS} runs each, interleaved)", times)
    ok = _ratio(med, "podman", PS_VS_PODMAN)
    ok &= _ratio(med, "docker", None)
    return ok


def main() -> int:
    from bench.pull import push_image
    from tests.fixtures.registry import busybox_tar, start_registry

    for tool in ("podman", "runc", "conmon", "docker-registry", "busybox"):
        if not shutil.which(tool):
            print(f"run: {tool} is not installed", file=sys.stderr)
            return 1
    # an installed package has its bytecode compiled; a source tree run with
    # PYTHONDONTWRITEBYTECODE would otherwise recompile every module on every command
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "reconciler")],
                   capture_output=True)
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(scratch("dm-bench-run-"))
        reg = stack.enter_context(start_registry(work / "registry"))
        docker, _ = optional_dockerd(stack, work / "docker")
        config = work / "constants.json"
        config.write_text(json.dumps({"insecure-registries": [reg.addr], "bridge-name": "dmbench0",
                                      "bridge-subnet": "10.251.77.0/24"}))
        layer = busybox_tar()
        push_image(reg.url, "bench/busybox", [layer])
        ref = f"{reg.addr}/bench/busybox:latest"
        dm, podman = DockerMini(work, config), Podman(work)
        try:
            dm("pull", "-q", ref)
            podman("pull", "-q", "--tls-verify=false", ref)
            if docker:
                docker.run("pull", "-q", ref)   # 127.0.0.0/8 registries are insecure-allowed
            floor = RuncFloor(work, layer)
            ok_run = bench_run(dm, podman, floor, ref, docker)
            ok_ps = bench_ps(dm, podman, ref, docker)
            return 0 if ok_run and ok_ps and docker else 1
        finally:
            dm.cleanup()
            podman.cleanup()


if __name__ == "__main__":
    sys.exit(main())
