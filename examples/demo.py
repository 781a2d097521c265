"""`make demo`: the example web stack end to end, on this machine only.

Starts a local docker-registry on 127.0.0.1, builds a busybox-static image with umoci and pushes
it with skopeo (the test fixtures' code), then with its own --root, bridge and subnet: applies
examples/web.yaml, shows ps and the client's log (it fetches the web server's page), applies
again (nothing to do), raises the web server's memory limit (applied in place: still up since
the first apply), takes the stack down; then applies the compose project in examples/compose
(a web server serving what an app writes into a named volume), fetches its page, takes it down
with -v (its volume too) and removes everything it made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fixtures.registry import ImageBuilder, start_registry  # noqa: E402  (shared builder)

BRIDGE, SUBNET = "dmdemo0", "10.231.7.0/24"
WEB_IP, WEB_MAC = "10.231.7.10", "02:42:0a:e7:07:0a"
SITE_IP = "10.231.7.20"


def main() -> int:
    if os.geteuid() != 0:
        print("the demo runs real containers (runc, overlayfs, netlink): run it as root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="docker-mini-demo-") as tmp:
        tmp = Path(tmp)
        root = tmp / "root"
        config = tmp / "constants.json"
        config.write_text(json.dumps({"bridge-name": BRIDGE, "bridge-subnet": SUBNET}))
        base = [sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(config)]

        print("$ starting a registry on 127.0.0.1 and pushing demo/busybox:latest")
        with start_registry(tmp / "registry") as registry:
            builder = ImageBuilder(registry, tmp / "images")
            builder.push(builder.busybox_tag(), "demo/busybox", "latest")
            env = {**os.environ, "REGISTRY": registry.addr, "WEB_IP": WEB_IP, "WEB_MAC": WEB_MAC,
                   "SITE_IP": SITE_IP}

            def dm(*args: str, show: bool = True) -> subprocess.CompletedProcess:
                if show:
                    print(f"\n$ docker-mini {' '.join(args)}", flush=True)
                proc = subprocess.run([*base, *args], env=env, text=True, capture_output=True)
                if show:
                    print(proc.stdout, end="")
                    print(proc.stderr, end="", file=sys.stderr)
                return proc

            try:
                spec = str(REPO / "examples" / "web.yaml")
                if dm("apply", "-f", spec).returncode != 0:
                    return 1
                time.sleep(3)                # the client fetches every 2 s
                dm("ps")
                dm("logs", "demo-client")
                dm("apply", "-f", spec)
                print("\n$ export WEB_MEMORY=64m    # a limit change is applied in place", flush=True)
                env["WEB_MEMORY"] = "64m"
                dm("apply", "-f", spec)
                dm("ps", "--filter", "label=io.docker-mini.service=web")
                dm("down", "-f", spec)

                compose = str(REPO / "examples" / "compose")
                if dm("apply", "-f", compose).returncode != 0:
                    return 1
                time.sleep(3)                # the app rewrites the page every 2 s
                dm("exec", "site-app", "wget", "-q", "-O", "-", f"http://{SITE_IP}/")
                dm("healthcheck", "site-app")
                dm("ps", "--filter", "label=io.docker-mini.stack=site")
                dm("volume", "ls")
                dm("down", "-v", "-f", compose)
                return 0
            finally:
                dm("down", "-f", spec, show=False)
                dm("down", "-v", "-f", str(REPO / "examples" / "compose"), show=False)
                dm("network", "prune", "-f", show=False)
                subprocess.run(["umount", "-R", str(root)], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
