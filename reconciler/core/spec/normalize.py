"""Loading a stack: YAML files merged, validated against the schema, then normalized into a
Stack with the checks the schema cannot express (addresses, dependencies, limits, env files)."""

from __future__ import annotations

import difflib
import ipaddress
import re
import shlex
from typing import Any, Callable, Mapping, Sequence

from reconciler.core.envfile import parse_env_file
from reconciler.core.labels import RESERVED_PREFIX as RESERVED_LABEL_PREFIX
from reconciler.core.errors import InvalidArgument, SpecError
from reconciler.core.limits import Resources, parse_resources
from reconciler.core.portmapping import parse_ports
from reconciler.core.reference import parse_reference
from reconciler.core.units import parse_size
from reconciler.core.spec import compose
from reconciler.core.spec.model import HealthcheckSpec, ImageSpec, ServiceSpec, Stack
from reconciler.core.spec.problems import KeyPath, SpecErrors, show
from reconciler.core.spec.schema import ValidCache, check_schema
from reconciler.core.spec.yamlload import parse_yaml


def load_stack(sources: Sequence[tuple[str, str]], schema: Mapping, env: Mapping[str, str] | None = None,
               *, subnet: str | None = None, host_cpus: int = 1,
               read_env_file: Callable[[str, str], str] | None = None,
               valid_cache: ValidCache | None = None, project_name: str | None = None) -> Stack:
    """Load, validate and normalize a stack from (file name, text) pairs (one file or a directory's
    *.yaml, merged), or from a compose file (core.spec.compose maps it; project_name is its
    stack's name when the file has no name:). read_env_file(spec_file, name) returns an
    env_file's text (raises OSError).
    Raises SpecError naming every mistake (file:line key.path: what)."""
    env = dict(env or {})
    errors = SpecErrors()
    docs: list[tuple[str, dict]] = []
    for file, text in sources:
        file_errors_before = len(errors.items)
        errors.scope = file
        is_compose = compose.is_compose(file, text)
        data = parse_yaml(text, file, env, errors,
                          interpolation=compose.interpolation if is_compose else None)
        if data is None and len(errors.items) == file_errors_before:
            errors.items.append(SpecError("empty spec: needs at least `stack: NAME`", file=file, line=1))
            continue
        if data is None:
            continue
        if is_compose:
            data = compose.to_native(data, file, errors, env, project_name=project_name, schema=schema,
                                     subnet=subnet)
            if data is None:
                continue
        # key paths inside one file carry its name first, so lines of two files never mix
        check_schema(data, schema, errors, valid_cache)
        if isinstance(data, dict):
            docs.append((file, data))
    errors.scope = None
    if not sources:
        errors.items.append(SpecError("no spec files (a file, or a directory of *.yaml files)"))
    # Semantic checks run even after schema errors, so one run reports every mistake; they
    # skip what the schema already found malformed.
    return _merge_and_normalize(docs, env, errors, subnet=subnet, host_cpus=host_cpus,
                                read_env_file=read_env_file)


def _merge_and_normalize(docs, env, errors: SpecErrors, *, subnet, host_cpus, read_env_file) -> Stack:
    # After merging, key paths drop the file name; map them back to (file, line).
    merged_lines: dict[KeyPath, tuple[str, int]] = {}
    stack_name = None
    stack_file = None
    pull_policy = None
    raw_images: list[tuple[KeyPath, Any]] = []
    raw_containers: dict[str, tuple[str, dict]] = {}
    raw_volumes: dict[str, tuple[str, dict]] = {}
    for file, data in docs:
        for p, loc in list(errors.lines.items()):
            if p and p[0] == file:
                merged_lines.setdefault(p[1:], loc)
        for p, written in list(errors.aliases.items()):
            if p and p[0] == file:
                errors.aliases.setdefault(p[1:], written)
        name = data.get("stack")
        if stack_name is None:
            stack_name, stack_file = name, file
        elif name != stack_name:
            errors.add(("stack",), f"stack {show(name)} differs from {show(stack_name)} in "
                       f"{stack_file}: all files of a directory form one stack", scope=file)
        if "pull_policy" in data:
            if pull_policy is not None and data["pull_policy"] != pull_policy:
                errors.add(("pull_policy",), f"{show(data['pull_policy'])} differs from "
                           f"{show(pull_policy)} set in another file", scope=file)
            pull_policy = data["pull_policy"]
        for vname, body in (data.get("volumes") if isinstance(data.get("volumes"), dict) else {}).items():
            if vname in raw_volumes and raw_volumes[vname][1] != (body or {}):
                errors.add(("volumes", vname), f"volume {show(vname)} is also defined, differently, "
                           f"in {raw_volumes[vname][0]}", scope=file)
            raw_volumes.setdefault(vname, (file, body or {}))
        images_list = data.get("images") if isinstance(data.get("images"), list) else []
        for i, img in enumerate(images_list):
            if isinstance(img, str) or (isinstance(img, dict) and isinstance(img.get("ref"), str)):
                raw_images.append(((file, "images", i), img))
        containers = data.get("containers") if isinstance(data.get("containers"), dict) else {}
        # `containers:` left empty (null) means none, like an empty mapping
        for svc, body in containers.items():
            if not isinstance(body, dict):
                continue
            if svc in raw_containers:
                other = raw_containers[svc][0]
                errors.add(("containers", svc),
                           f"container {show(svc)} is also defined in {other}:"
                           f"{errors.lines.get((other, 'containers', svc), (other, '?'))[1]}",
                           scope=file)
                continue
            raw_containers[svc] = (file, body)
    # From here on paths are file-less; errors.lines gets the merged view.
    for p, loc in merged_lines.items():
        errors.lines.setdefault(p, loc)
    pull_policy = pull_policy or "missing"

    images: dict[str, ImageSpec] = {}
    for (file, _, i), img in raw_images:
        spec = ImageSpec(img, "present", pull_policy) if isinstance(img, str) else ImageSpec(
            img["ref"], img.get("state", "present"), img.get("pull", pull_policy))
        _check_reference(spec.ref, ("images", i) + (("ref",) if isinstance(img, dict) else ()), errors, file)
        if spec.ref in images and images[spec.ref] != spec:
            errors.add(("images", i), f"image {show(spec.ref)} is listed twice with different "
                       f"settings", scope=file)
        images.setdefault(spec.ref, spec)

    # a volume of the stack is named <stack>_<key> (as compose names them), unless it has a
    # name: or is external (made elsewhere: used, never created or removed by the stack)
    volume_names = {k: (b.get("name") or (k if b.get("external") else f"{stack_name}_{k}"))
                    for k, (_, b) in raw_volumes.items() if isinstance(b, dict)}
    own_volumes = tuple(volume_names[k] for k, (_, b) in raw_volumes.items()
                        if isinstance(b, dict) and not b.get("external"))
    services: dict[str, ServiceSpec] = {}
    for svc, (file, body) in raw_containers.items():
        try:
            s = _service(stack_name, svc, body, file, env, errors, host_cpus, read_env_file,
                         frozenset(raw_containers), volume_names)
        except (TypeError, AttributeError, ValueError, KeyError):
            if not errors.has_error_under(("containers", svc)):
                raise
            continue                            # malformed: the schema errors say how
        if s is not None:
            services[svc] = s
        if s is None or not isinstance(s.image, str):
            continue                            # no image name to plan for: the schema says why
        if s.state != "absent" and s.image not in images:
            images[s.image] = ImageSpec(s.image, "present", pull_policy)
        elif s.state != "absent" and images[s.image].state == "absent":
            errors.add(("containers", svc, "image"), f"{show(s.image)} is listed under images "
                       f"with state: absent but this container uses it")

    _check_addresses(services, errors, subnet)
    order = _check_dependencies(services, errors)
    errors.raise_if_any()
    ordered = {name: services[name] for name in order}
    files = tuple(f for f, _ in docs)
    return Stack(name=stack_name, images=tuple(images.values()), containers=ordered, files=files,
                 volumes=own_volumes)


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


def _service(stack: str, svc: str, c: dict, file: str, env: Mapping[str, str], errors: SpecErrors,
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
    depends, conditions = _depends_on(c.get("depends_on"))
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
    _check_reference(c.get("image"), base + ("image",), errors)
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
        healthcheck=_healthcheck(c.get("healthcheck"), base + ("healthcheck",), errors),
        stop_signal=c.get("stop_signal"),
        stop_grace_period=grace,
        labels=tuple(sorted(labels.items())),
        state=c.get("state", "running"),
    )


def _check_reference(ref: Any, path: KeyPath, errors: SpecErrors, scope: str | None = None) -> None:
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


def _depends_on(value: Any) -> tuple[list, tuple[tuple[str, str], ...]]:
    """depends_on as a list of services, or a map of service -> {condition: ...}: the services
    and the conditions other than service_started."""
    if not isinstance(value, dict):
        return list(value or []), ()
    conditions = tuple((dep, cond) for dep, v in value.items()
                       if isinstance(v, dict) and (cond := v.get("condition", "service_started")) != "service_started")
    return list(value), conditions


def _duration(value: Any) -> float:
    """Seconds of a duration: a number, or 1m30s, 500ms (the schema checked the form)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(int(n) * scale[u] for n, u in re.findall(r"(\d+)(ms|h|m|s)", text))


def _healthcheck(value: Any, path: KeyPath, errors: SpecErrors) -> HealthcheckSpec | None:
    if not isinstance(value, dict):
        return None                              # absent, or the schema says what is wrong
    from reconciler.core.health import HealthcheckError, probe_command
    test = value.get("test")
    try:
        probe_command(test)
    except HealthcheckError as e:
        errors.add(path + ("test",), str(e), "e.g. test: [CMD, wget, -q, --spider, http://localhost/]")
    times = {k: _duration(value[k]) for k in ("interval", "timeout", "start_period") if k in value}
    for k in ("interval", "timeout"):
        if k in times and times[k] <= 0:
            errors.add(path + (k,), f"must be longer than 0 (got {value[k]!r})")
    return HealthcheckSpec(test=tuple(test) if isinstance(test, list) else test,
                           interval=times.get("interval"), timeout=times.get("timeout"),
                           retries=value.get("retries"), start_period=times.get("start_period"),
                           disable=bool(value.get("disable", False)))


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


def _check_addresses(services: dict[str, ServiceSpec], errors: SpecErrors, subnet: str | None) -> None:
    net = ipaddress.IPv4Network(subnet) if subnet else None
    seen_ip: dict[str, str] = {}
    seen_mac: dict[str, str] = {}
    for name, s in services.items():
        if s.state == "absent":
            continue
        if s.ip and isinstance(s.ip, str):          # anything else: the schema says what is wrong
            path = ("containers", name, "ip")
            try:
                ip = ipaddress.IPv4Address(s.ip)
            except ValueError:
                ip = None
                errors.add(path, f"{show(s.ip)} is not an IPv4 address")
            if ip is not None and net is not None:
                hosts_start = net.network_address + 1
                if ip not in net:
                    errors.add(path, f"{show(s.ip)} is outside the bridge subnet {net}")
                elif ip in (net.network_address, net.broadcast_address):
                    errors.add(path, f"{show(s.ip)} is the subnet's {'network' if ip == net.network_address else 'broadcast'} address")
                elif ip == hosts_start:
                    errors.add(path, f"{show(s.ip)} is the bridge's gateway address")
            if s.ip in seen_ip:
                errors.add(path, f"{show(s.ip)} is also the ip of container {show(seen_ip[s.ip])}")
            seen_ip.setdefault(s.ip, name)
        if s.mac:
            path = ("containers", name, "mac")
            if not isinstance(s.mac, str) or not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", s.mac):
                continue                        # malformed: the schema says so
            if int(s.mac.split(":")[0], 16) & 1:
                errors.add(path, f"{show(s.mac)} is a multicast address (the first byte must be even)")
            if s.mac in seen_mac:
                errors.add(path, f"{show(s.mac)} is also the mac of container {show(seen_mac[s.mac])}")
            seen_mac.setdefault(s.mac, name)


def _check_dependencies(services: dict[str, ServiceSpec], errors: SpecErrors) -> list[str]:
    """Report unknown and cyclic depends_on; return the services in dependency order."""
    names = list(services)
    for name, s in services.items():
        for i, dep in enumerate(s.depends_on):
            path = ("containers", name, "depends_on", i)
            if not isinstance(dep, str):
                continue                        # the schema says what is wrong
            if dep == name:
                errors.add(path, f"{show(name)} depends on itself")
            elif dep not in services:
                close = difflib.get_close_matches(dep, names, n=1, cutoff=0.6)
                errors.add(path, f"depends on unknown container {show(dep)}",
                           f"did you mean {show(close[0])}?" if close else
                           "known: " + ", ".join(names))
    order: list[str] = []
    state: dict[str, int] = {}           # 1 visiting, 2 done
    stack: list[str] = []
    reported: set[frozenset] = set()

    def visit(n: str):
        state[n] = 1
        stack.append(n)
        for d in services[n].depends_on:
            if not isinstance(d, str) or d not in services or d == n:
                continue
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    errors.add(("containers", cycle[0], "depends_on"),
                               "depends_on cycle: " + " -> ".join(cycle))
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2
        order.append(n)

    for n in names:
        if n not in state:
            visit(n)
    return order
