"""conmon's exit command:
`python -m reconciler.exit_hook --root ROOT [--config FILE] --container-dir DIR ID TOKEN`.

conmon runs it once a container's process has ended (after writing the exit file, which is the
exit code ps, inspect and wait read). It runs once per container, so a `down` of 100 containers
starts 100 of them at the same moment: it must cost little. Here only what the answer needs is
imported (no click, no command table, not even the layout: the container's directory is an
argument): most of the time there is nothing to do, because the
command that stopped the container (stop, down, rm -f, restart) holds its stop claim
(engine.containers.stop_claim) and releases the runtime, network and mount itself, or the
record already says this run has been reaped and nothing follows. Otherwise the engine's
cleanup runs: reap, then --rm removal or the restart policy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from reconciler.engine.containers.stop_claim import claimed

USAGE = ("usage: python -m reconciler.exit_hook --root ROOT [--config FILE] --container-dir DIR "
         "CONTAINER_ID [TOKEN]")
OPTIONS = ("--root", "--config", "--container-dir")


def parse_args(argv: list[str]) -> tuple[dict[str, str], str, str | None]:
    """({option: value}, container id, token or None); ValueError on anything else."""
    options: dict[str, str] = {}
    rest = []
    args = iter(argv)
    for arg in args:
        if arg in OPTIONS:
            value = next(args, None)
            if value is None:
                raise ValueError(f"{arg} needs a value")
            options[arg] = value
        else:
            rest.append(arg)
    if "--root" not in options or "--container-dir" not in options or not 1 <= len(rest) <= 2:
        raise ValueError("a root, a container directory and a container id are needed")
    return options, rest[0], rest[1] if len(rest) == 2 else None


def nothing_to_do(container_dir: Path, token: str | None) -> bool:
    """Whether the exit needs no cleanup here: the container is gone, a stopper is handling it,
    or its record already shows this run reaped with no removal or restart to follow."""
    if not container_dir.is_dir():
        return True
    if claimed(container_dir):
        return True
    try:
        data = json.loads((container_dir / "container.json").read_bytes())
        state, options = data["state"], data.get("options") or {}
    except (OSError, ValueError, KeyError, TypeError):
        return False                       # let the engine look (and say what is wrong)
    if not isinstance(state, dict) or not isinstance(options, dict):
        return False
    if token is not None and state.get("token") != token:
        return True                        # a later run already replaced this one
    return (state.get("status") == "exited" and not options.get("auto_remove")
            and bool(state.get("manually_stopped") or state.get("restarting")))


def _config(path: str | None):
    from reconciler.core.config import DEFAULT_CONFIG_PATH, parse_config
    path = path or DEFAULT_CONFIG_PATH
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return parse_config(None)
    return parse_config(text, source=str(path))


def main(argv: list[str] | None = None) -> int:
    try:
        options, cid, token = parse_args(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"docker-mini exit hook: {e}\n{USAGE}", file=sys.stderr)
        return 2
    if nothing_to_do(Path(options["--container-dir"]), token):
        return 0
    from reconciler.core.errors import DockerMiniError
    from reconciler.engine.containers.exit_cleanup import cleanup
    from reconciler.engine.engine import Engine
    try:
        cleanup(Engine(options["--root"], _config(options.get("--config"))), cid, token)
    except (DockerMiniError, OSError) as e:
        print(f"docker-mini exit hook: container {cid[:12]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
