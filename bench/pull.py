"""Cold pull of a multi-layer image (> 50 MB compressed) from a local registry, side by side:

  docker-mini pull   fresh --root each run (the whole CLI, start-up included)
  podman pull        fresh --root/--runroot each run, --tls-verify=false
  floor              skopeo copy to a dir, then `gzip -dc | tar -x` of each layer

Runs are interleaved (so a noisy moment hits everyone), medians printed with ratios.
Target: docker-mini's median <= 0.9x podman's.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import requests

from bench.common import docker_mini_command, interleaved, scratch, timed_run, unmount_under

RUNS = int(os.environ.get("BENCH_PULL_RUNS", "5"))
REPO = Path(__file__).resolve().parent.parent
MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({os.path.dirname(n) for n in files if os.path.dirname(n)})
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(ti)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def make_layers() -> list[bytes]:
    """Five layers, ~70 MB compressed: big random files, and one of 3000 small files."""
    rnd = lambda n: os.urandom(n)  # noqa: E731 - incompressible, like binaries and media
    layers = [_tar({f"opt/big{i}/file{j}": rnd(5 << 20) for j in range(3)}) for i in range(3)]
    layers.append(_tar({f"usr/share/many/d{i // 100}/f{i}": rnd(4096) for i in range(3000)}))
    layers.append(_tar({"etc/config": b"x" * 100, "usr/lib/blob": rnd(8 << 20)}))
    return layers


def push_image(url: str, repo: str, layers: list[bytes]) -> int:
    """Push gzip layers, config and a schema2 manifest; returns the compressed size."""
    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = requests.post(f"{url}/v2/{repo}/blobs/uploads/", timeout=30)
        r.raise_for_status()
        loc = r.headers["Location"]
        loc = loc if loc.startswith("http") else url + loc
        requests.put(loc, params={"digest": digest}, data=data, timeout=120).raise_for_status()
        return {"size": len(data), "digest": digest}

    compressed = [gzip.compress(t, compresslevel=1, mtime=0) for t in layers]
    descs = [{"mediaType": MT_LAYER, **blob(c)} for c in compressed]
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]}
                         }).encode()
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, **blob(config)}, "layers": descs}
    requests.put(f"{url}/v2/{repo}/manifests/latest", data=json.dumps(manifest),
                 headers={"Content-Type": MT_MANIFEST}, timeout=30).raise_for_status()
    return sum(len(c) for c in compressed)


def _fresh(path: Path) -> Path:
    if path.exists():
        unmount_under(path)
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def docker_mini(work: Path, ref: str, config: Path) -> float:
    root = _fresh(work / "dm-root")
    return timed_run([*docker_mini_command(), "--root", str(root), "--config", str(config),
                      "pull", "-q", ref], cwd=REPO)


def podman(work: Path, ref: str) -> float:
    root, runroot = _fresh(work / "podman-root"), _fresh(work / "podman-runroot")
    try:
        return timed_run(["podman", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "overlay",
                     "--cgroup-manager", "cgroupfs", "--events-backend", "none",
                     "pull", "-q", "--tls-verify=false", ref])
    finally:
        subprocess.run(["podman", "--root", str(root), "--runroot", str(runroot), "--storage-driver",
                        "overlay", "system", "reset", "-f"], capture_output=True)


def floor(work: Path, ref: str) -> float:
    blobs, dest = _fresh(work / "floor-dir"), _fresh(work / "floor-rootfs")
    shutil.rmtree(blobs)
    t = time.perf_counter()
    timed_run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{blobs}"])
    manifest = json.loads((blobs / "manifest.json").read_text())
    for layer in manifest["layers"]:
        path = blobs / layer["digest"].split(":", 1)[1]
        subprocess.run(f"gzip -dc {path} | tar -x -C {dest}", shell=True, check=True)
    return time.perf_counter() - t


def main() -> int:
    from tests.fixtures.registry import start_registry

    for tool in ("podman", "skopeo", "docker-registry"):
        if not shutil.which(tool):
            print(f"pull: {tool} is not installed (make deps-bench)", file=sys.stderr)
            return 1
    with scratch("dm-bench-pull-") as work, start_registry(work / "registry") as reg:
        config = work / "constants.json"
        config.write_text(json.dumps({"insecure-registries": [reg.addr]}))
        size = push_image(reg.url, "bench/layers", make_layers())
        ref = f"{reg.addr}/bench/layers:latest"
        print(f"image: 5 layers, {size / 1e6:.1f} MB compressed, {RUNS} runs each (interleaved)")
        peers = {"docker-mini": lambda: docker_mini(work, ref, config),
                 "podman": lambda: podman(work, ref),
                 "floor (skopeo + gzip|tar)": lambda: floor(work, ref)}
        times = interleaved(peers, RUNS)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, v in times.items():
        print(f"  {name:28s} median {med[name]:6.3f}s   runs {' '.join(f'{x:.3f}' for x in v)}")
    ratio = med["docker-mini"] / med["podman"]
    print(f"  docker-mini / podman = {ratio:.2f} (target <= 0.90)")
    print(f"  docker-mini / floor  = {med['docker-mini'] / med['floor (skopeo + gzip|tar)']:.2f}")
    return 0 if ratio <= 0.9 else 1

if __name__ == "__main__":
    sys.exit(main())
