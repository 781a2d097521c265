"""One container of a spec normalized into a ServiceSpec: env files and env, sizes and limits,
labels, network, ports, volumes, image reference, command words."""

from __future__ import annotations

import re
import shlex
from typing import Any, Mapping

from reconciler.core.envfile import parse_env_file
from reconciler.core.labels import RESERVED_PREFIX as RESERVED_LABEL_PREFIX
from reconciler.core.errors import InvalidArgument, SpecError
from reconciler.core.limits import Resources, parse_resources
from reconciler.core.portmapping import parse_ports
from reconciler.core.reference import parse_reference
from reconciler.core.units import parse_size
from reconciler.core.spec.dependencies import read_depends_on
from reconciler.core.spec.healthcheck import read_healthcheck
from reconciler.core.spec.model import ServiceSpec
from reconciler.core.spec.problems import KeyPath, SpecErrors, show


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _argv(value: Any, path: KeyPath, errors: SpecErrors) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as e:
            errors.add(path, f"{show(value)} cannot be split into words: {e}")
            return None
    return tuple(str(v) for v in value)


def _env_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def normalize_service(stack: str, svc: str, c: dict, file: str, env: Mapping[str, str], errors: SpecErrors,
                     host_cpus: int, read_env_file, service_names: frozenset[str],
                     volume_names: Mapping[str, str] = {}) -> ServiceSpec | None:
    base = ("containers", svc)

    # environment: env_file(s) first, then env overriding
    merged_env: dict[str, str] = {}
    for i, name in enumerate(_as_list(c.get("env_file"))):
        p = base + ("env_file",) + ((i,) if isinstance(c.get("env_file"), list) else ())
        if read_env_file is None:
            errors.add(p, f"env_file {show(name)} cannot be read here")
            continue
        try:
            text = read_env_file(file, name)
        except OSError as e:
            errors.add(p, f"env_file {show(name)}: {e.strerror or e}")
            continue
        try:
            merged_env.update(item.split("=", 1) for item in parse_env_file(text, name, env.get))
        except InvalidArgument as e:
            errors.items.append(SpecError(e.message))
    raw_env = c.get("env")
    if isinstance(raw_env, dict):
        for k, v in raw_env.items():
            if v is None:                     # NAME: (no value) takes it from the environment
                if k in env:
                    merged_env[k] = env[k]
            else:
                merged_env[k] = _env_value(v)
    elif isinstance(raw_env, list):
        for item in raw_env:
            k, _, v = str(item).partition("=")
            merged_env[k] = v

    # sizes and limits
    def size(key: str) -> int | None:
        if key not in c:
            return None
        try:
            return parse_size(c[key], key)
        except InvalidArgument:
            errors.add(base + (key,), f"{show(c[key])} is not a size")
            return None

    memory, disk = size("memory"), size("disk")
    swap = c.get("memory_swap")
    swap_text = None
    if swap is not None:
        if str(swap).strip() == "-1":
            swap_text = "-1"
        else:
            swap_bytes = size("memory_swap")
            swap_text = str(swap_bytes) if swap_bytes is not None else None
    for limit in ("cpu_quota", "cpu_period"):
        if "cpus" in c and limit in c:
            errors.add(base + (limit,), "conflicts with cpus: set either cpus or "
                       "cpu_period/cpu_quota", hint="cpus: 0.5 is cpu_period: 100000 with cpu_quota: 50000")
    resources = Resources()
    if not errors.has_error_under(base):
        try:
            resources = parse_resources(
                memory=memory, memory_swap=swap_text, cpus=c.get("cpus"),
                cpu_period=c.get("cpu_period"), cpu_quota=c.get("cpu_quota"),
                cpuset_cpus=str(c["cpuset"]) if "cpuset" in c else None,
                pids_limit=c.get("pids"), host_cpus=host_cpus)
        except InvalidArgument as e:
            errors.add(_limit_path(base, c, e.message), e.message)

    grace = c.get("stop_grace_period")
    if grace is not None:
        grace = _seconds(grace)

    labels = {}
    for k, v in (c.get("labels") or {}).items():
        if k.startswith(RESERVED_LABEL_PREFIX):
            errors.add(base + ("labels", k), f"labels starting with {RESERVED_LABEL_PREFIX} are "
                       f"reserved for docker-mini")
        labels[k] = _env_value(v)

    network = c.get("network", "bridge")
    depends, conditions = read_depends_on(c.get("depends_on"))
    if network.startswith("container:"):
        peer = network.split(":", 1)[1]
        if peer in service_names:
            network = f"container:{stack}-{peer}"
            if peer not in depends:
                depends.append(peer)
    if c.get("ip") and network != "bridge":
        errors.add(base + ("ip",), f"a static ip needs network: bridge (not {network})")
    if c.get("mac") and network != "bridge":
        errors.add(base + ("mac",), f"a static mac needs network: bridge (not {network})")
    if c.get("ports") and network not in ("bridge",):
        errors.add(base + ("ports",), f"published ports need network: bridge (not {network})")
    check_reference(c.get("image"), base + ("image",), errors)
    if isinstance(c.get("ports"), list) and not errors.has_error_under(base + ("ports",)):
        try:
            parse_ports(str(p) for p in c["ports"])
        except InvalidArgument as e:      # a port out of range, a range of the wrong size...
            errors.add(base + ("ports",), e.message.removeprefix("-p "))

    volumes = []
    for i, v in enumerate(c.get("volumes") or ()):
        source, _, rest = str(v).partition(":")
        if not source.startswith("/"):
            if source not in volume_names:
                errors.add(base + ("volumes", i), f"refers to undefined volume {show(source)}",
                           f"declare it under the top-level volumes: ({source}: {{}})")
                continue
            v = f"{volume_names[source]}:{rest}"
        volumes.append(v)

    return ServiceSpec(
        name=svc,
        container_name=f"{stack}-{svc}",
        image=c.get("image", ""),
        command=_argv(c.get("command"), base + ("command",), errors),
        entrypoint=_argv(c.get("entrypoint"), base + ("entrypoint",), errors),
        env=tuple(f"{k}={v}" for k, v in merged_env.items()),
        working_dir=c.get("working_dir"),
        user=str(c["user"]) if "user" in c else None,
        hostname=c.get("hostname", svc if network == "bridge" or network == "none" else None),
        resources=resources,
        disk=disk,
        ip=c.get("ip"),
        mac=c["mac"].lower() if c.get("mac") else None,
        ports=tuple(str(p) for p in c.get("ports") or ()),
        volumes=tuple(volumes),
        tmpfs=tuple(c.get("tmpfs") or ()),
        read_only=bool(c.get("read_only", False)),
        cap_add=tuple(c.get("cap_add") or ()),
        cap_drop=tuple(c.get("cap_drop") or ()),
        ulimits=tuple(c.get("ulimits") or ()),
        network=network,
        restart=c.get("restart", "no"),
        depends_on=tuple(depends),
        conditions=conditions,
        healthcheck=read_healthcheck(c.get("healthcheck"), base + ("healthcheck",), errors),
        stop_signal=c.get("stop_signal"),
        stop_grace_period=grace,
        labels=tuple(sorted(labels.items())),
        state=c.get("state", "running"),
    )


def check_reference(ref: Any, path: KeyPath, errors: SpecErrors, scope: str | None = None) -> None:
    """An image name pull would refuse is the spec's mistake, found before anything is done."""
    if isinstance(ref, str) and ref:
        try:
            parse_reference(ref)
        except InvalidArgument as e:
            errors.add(path, e.message, scope=scope)


def _limit_path(base: KeyPath, c: dict, message: str) -> KeyPath:
    m = message.lower()
    for key, words in (("memory_swap", ("memoryswap",)), ("memory", ("memory",)),
                       ("cpuset", ("cpuset", "requested cpus")), ("cpus", ("nano cpus", "range of cpus")),
                       ("cpu_period", ("period",)), ("cpu_quota", ("quota",)), ("pids", ("pids",))):
        if key in c and any(w in m for w in words):
            return base + (key,)
    return base


def _seconds(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    total = 0
    for amount, unit in re.findall(r"(\d+)([hms])", text):
        total += int(amount) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total
