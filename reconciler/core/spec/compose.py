"""The compose front end: a Compose Specification file mapped onto the engine's own spec (one
model, two front ends). Pure: the file's text and its .env's variables come in, a native spec
document (`stack`, `volumes`, `containers`) goes out, every line of it mapped back to the
compose file's, so a mistake is reported at the compose file's line.

What the engine cannot do yet is refused with file:line and "not supported yet"; what it will not
do (build, secrets...) is refused with what to do instead. Nothing is ignored silently, except
what compose itself ignores (`version:`, `x-*` extension fields).
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any, Mapping

from reconciler.core.spec.problems import KeyPath, SpecErrors, show

COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

_SERVICES_AT_TOP = re.compile(r"^services\s*:", re.M)
_NATIVE_AT_TOP = re.compile(r"^(stack|containers)\s*:", re.M)


def is_compose(file: str, text: str) -> bool:
    """A compose file: one of compose's file names, or any YAML whose top level has services:
    (and none of the native spec's stack: or containers:)."""
    if posixpath.basename(file) in COMPOSE_FILE_NAMES:
        return True
    return bool(_SERVICES_AT_TOP.search(text)) and not _NATIVE_AT_TOP.search(text)


def normalize_project_name(name: str) -> str:
    """As compose: lower case, only [a-z0-9_-], starting with a letter or digit."""
    return re.sub(r"^[^a-z0-9]+", "", re.sub(r"[^a-z0-9_-]", "", name.lower()))


# --- interpolation, as compose does it ------------------------------------------------------

_VAR = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
                  r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\{[^}]*\}?))")


def interpolation(text: str, env: Mapping[str, str]) -> tuple[str, list[tuple[str, str | None]]]:
    """${VAR} and $VAR (unset: empty, as compose), ${VAR:-default} (unset or empty),
    ${VAR-default} (unset), ${VAR:?message} (error when unset or empty), ${VAR?message}
    (error when unset), ${VAR:+alt} / ${VAR+alt} (alt when set), $$ for a literal $."""
    problems: list[tuple[str, str | None]] = []

    def sub(m: re.Match) -> str:
        if m.group("dollar"):
            return "$"
        if m.group("bad") is not None:
            problems.append((f"invalid interpolation format {show(m.group(0))}",
                             "write ${VAR}, ${VAR:-default} or $$ for a literal $"))
            return ""
        name = m.group("braced") or m.group("plain")
        value = env.get(name)
        op, arg = m.group("op"), m.group("arg") or ""
        unset_or_empty = value is None or value == ""
        if op in (":-", "-"):
            return arg if (unset_or_empty if op == ":-" else value is None) else value
        if op in (":?", "?"):
            if unset_or_empty if op == ":?" else value is None:
                problems.append((f"required variable {name} is missing a value"
                                 + (f": {arg}" if arg else ""), f"export {name}=... or set it in .env"))
                return ""
            return value
        if op in (":+", "+"):
            return arg if not (unset_or_empty if op == ":+" else value is None) else ""
        return value or ""

    return _VAR.sub(sub, text), problems


# --- the mapping ----------------------------------------------------------------------------

_NOT_YET = "not supported yet"

# service keys copied as they are, to the native key of the same meaning
_SAME = {"image": "image", "command": "command", "entrypoint": "entrypoint", "hostname": "hostname",
         "working_dir": "working_dir", "mac_address": "mac", "stop_signal": "stop_signal",
         "restart": "restart", "mem_limit": "memory", "memswap_limit": "memory_swap",
         "cpuset": "cpuset", "pids_limit": "pids", "read_only": "read_only", "cap_add": "cap_add",
         "cap_drop": "cap_drop"}

# keys refused with what to do instead
_REFUSED = {
    "build": "docker-mini runs images, it does not build them: build and push the image "
             "(docker build, buildah), then set image:",
    "secrets": "mount the secret's file with a bind volume (./secret.txt:/run/secrets/NAME:ro) instead",
    "configs": "mount the config file with a bind volume (./app.conf:/etc/app.conf:ro) instead",
    "container_name": "docker-mini names a service's container <project>-<service>: remove container_name:",
    "links": "containers on the bridge reach each other by name: remove links:",
    "external_links": "containers on the bridge reach each other by name: remove external_links:",
    "expose": "containers on the bridge reach each other's ports anyway: remove expose: (ports: publishes)",
    "scale": "one container per service: remove scale: (or set it to 1)",
    "init": "an init process is " + _NOT_YET + ": remove init: (or set it to false)",
    "extra_hosts": "extra_hosts is " + _NOT_YET + ": remove it",
    "dns": "dns is " + _NOT_YET + ": remove it (the host's resolv.conf is used)",
    "cpu_shares": "cpu_shares is " + _NOT_YET + ": limit CPU with cpus: or cpuset: instead",
}
_FALSE_IS_FINE = {"init", "scale"}          # init: false and scale: 1 change nothing

_TOP_LEVEL_REFUSED = {
    "secrets": "mount secret files with bind volumes instead",
    "configs": "mount config files with bind volumes instead",
    "include": "merge the included files into this one",
}


class _Mapper:
    def __init__(self, file: str, errors: SpecErrors, env: Mapping[str, str]):
        self.file = file
        self.errors = errors
        self.env = env
        self.dir = posixpath.dirname(os.path.abspath(file))

    def line(self, path: KeyPath) -> int | None:
        return self.errors.where((self.file,) + tuple(path))[1]

    def note(self, native: KeyPath, compose: KeyPath) -> None:
        line = self.line(compose)
        if line is not None:
            self.errors.note_line(native, self.file, line)

    def refuse(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.errors.add(path, message, hint)


def to_native(data: Any, file: str, errors: SpecErrors, env: Mapping[str, str], *,
              project_name: str | None = None) -> dict | None:
    """The native spec document for a compose document (errors noted on the compose file's lines)."""
    m = _Mapper(file, errors, env)
    if not isinstance(data, dict):
        errors.add((), "a compose file is a mapping with services:")
        return None
    for key in data:
        if key in ("services", "volumes", "networks", "name", "version") or str(key).startswith("x-"):
            continue
        if key in _TOP_LEVEL_REFUSED:
            m.refuse((key,), f"top-level {key}: is not supported", _TOP_LEVEL_REFUSED[key])
        else:
            m.refuse((key,), f"unknown top-level key {show(key)} in a compose file",
                     "known: services, volumes, networks, name, version, x-*")
    name = data.get("name")
    if name is not None:
        name = str(name)
        m.note(("stack",), ("name",))
    else:
        name = project_name or normalize_project_name(posixpath.basename(m.dir)) or "default"
        m.note(("stack",), ())
    native: dict = {"stack": name}

    volumes = data.get("volumes")
    if isinstance(volumes, dict):
        native["volumes"] = {}
        for vname, body in volumes.items():
            v = _top_volume(m, vname, body)
            if v is not None:
                native["volumes"][vname] = v
                m.note(("volumes", vname), ("volumes", vname))
    elif volumes is not None:
        errors.add(("volumes",), f"{show(volumes)} is not a mapping of volume names")

    networks = data.get("networks")
    if isinstance(networks, dict):
        for nname, body in networks.items():
            if nname == "default" and not body:
                continue
            m.refuse(("networks", nname), f"user-defined networks are {_NOT_YET}",
                     "remove the top-level networks: entry; services share the default bridge")
    elif networks is not None:
        errors.add(("networks",), f"{show(networks)} is not a mapping of network names")

    services = data.get("services")
    if not isinstance(services, dict):
        errors.add(("services",), "services: must be a mapping of service names")
        services = {}
    active = {p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
    containers: dict = {}
    for svc, body in services.items():
        base = ("services", svc)
        if not isinstance(body, dict):
            errors.add(base, f"service {show(svc)} must be a mapping")
            continue
        profiles = body.get("profiles")
        if profiles is not None:
            if not isinstance(profiles, list):
                errors.add(base + ("profiles",), "profiles: must be a list of names")
                continue
            if not active.intersection(map(str, profiles)):
                continue                        # not an active profile: not part of the stack
        c = _service(m, svc, body, native.get("volumes") or {})
        if c is not None:
            containers[svc] = c
            m.note(("containers", svc), base)
    native["containers"] = containers
    m.note(("containers",), ("services",))
    return native


def _top_volume(m: _Mapper, vname: str, body: Any) -> dict | None:
    path = ("volumes", vname)
    if body is None:
        return {}
    if not isinstance(body, dict):
        m.errors.add(path, f"{show(body)} is not a mapping")
        return None
    out: dict = {}
    for key, value in body.items():
        if str(key).startswith("x-"):
            continue
        if key == "external":
            if isinstance(value, dict):             # the old external: {name: X}
                out["external"] = True
                if "name" in value:
                    out["name"] = str(value["name"])
            else:
                out["external"] = bool(value)
        elif key == "name":
            out["name"] = str(value)
        elif key == "driver":
            if value != "local":
                m.refuse(path + (key,), f"volume driver {show(value)} is not supported (only local)")
        elif key == "labels":
            out["labels"] = _labels(m, value, path + (key,))
        elif key == "driver_opts":
            m.refuse(path + (key,), f"driver_opts are {_NOT_YET}",
                     "for a bind mount use a path (./dir:/path) in the service's volumes:")
        else:
            m.refuse(path + (key,), f"unknown volume key {show(key)}")
    return out


def _labels(m: _Mapper, value: Any, path: KeyPath) -> dict:
    if isinstance(value, dict):
        return {str(k): "" if v is None else v for k, v in value.items()}
    if isinstance(value, list):
        return dict((str(item).split("=", 1) + [""])[:2] for item in value)
    m.errors.add(path, f"{show(value)} is not a mapping or a list of KEY=VALUE")
    return {}


def _service(m: _Mapper, svc: str, body: dict, top_volumes: dict) -> dict | None:
    base = ("services", svc)
    nbase = ("containers", svc)
    c: dict = {}

    def put(native_key: str, value: Any, compose_key: str) -> None:
        if native_key in c and c[native_key] != value:
            m.refuse(base + (compose_key,), f"conflicts with another setting of the same limit "
                     f"({show(c[native_key])})")
            return
        c[native_key] = value
        m.note(nbase + (native_key,), base + (compose_key,))

    for key, value in body.items():
        path = base + (key,)
        if str(key).startswith("x-") or key == "profiles":
            continue
        if key in _REFUSED:
            if key in _FALSE_IS_FINE and (value is False or value is None
                                          or (key == "scale" and value == 1 and value is not True)):
                continue
            if key in ("extra_hosts", "dns") and not value:
                continue
            m.refuse(path, f"{key}: is not supported" if _NOT_YET not in _REFUSED[key]
                     else f"{key}: is {_NOT_YET}", _REFUSED[key])
        elif key in _SAME:
            put(_SAME[key], str(value) if key in ("restart", "cpuset") else value, key)
        elif key == "user":
            put("user", str(value), key)
        elif key == "stop_grace_period":
            put("stop_grace_period", str(value) if not isinstance(value, int) else value, key)
        elif key == "cpus":
            try:
                put("cpus", float(value), key)
            except (TypeError, ValueError):
                m.errors.add(path, f"{show(value)} is not a number of CPUs")
        elif key == "environment":
            put("env", _environment(m, value, path), key)
        elif key == "env_file":
            put("env_file", _env_file(m, value, path), key)
        elif key == "labels":
            put("labels", _labels(m, value, path), key)
        elif key == "ports":
            put("ports", _ports(m, value, path), key)
        elif key == "volumes":
            binds, tmpfs = _volumes(m, value, path, top_volumes)
            put("volumes", binds, key)
            if tmpfs:
                c["tmpfs"] = c.get("tmpfs", []) + tmpfs
                m.note(nbase + ("tmpfs",), path)
        elif key == "tmpfs":
            items = [value] if isinstance(value, str) else list(value or [])
            c["tmpfs"] = c.get("tmpfs", []) + [str(t) for t in items]
            m.note(nbase + ("tmpfs",), path)
        elif key == "ulimits":
            put("ulimits", _ulimits(m, value, path), key)
        elif key == "depends_on":
            put("depends_on", _depends_on(m, value, path), key)
        elif key == "healthcheck":
            if isinstance(value, dict) and (value.get("disable") is True or value.get("test") in (["NONE"], "NONE")):
                continue                        # no healthcheck: what the engine does anyway
            m.refuse(path, f"healthcheck: is {_NOT_YET}",
                     "remove healthcheck: for now (depends_on conditions need it too)")
        elif key == "deploy":
            _deploy(m, value, path, put)
        elif key == "networks":
            _networks(m, value, path, put)
        elif key == "network_mode":
            mode = str(value)
            if mode.startswith("service:"):
                mode = "container:" + mode.split(":", 1)[1]
            put("network", mode, key)
        else:
            m.refuse(path, f"unknown or unsupported service key {show(key)}",
                     "see README.md, \"Compose files\", for the keys docker-mini maps")
    if "image" not in c and "build" not in body:
        m.errors.add(base, f"service {show(svc)} has no image:")
    return c


def _environment(m: _Mapper, value: Any, path: KeyPath) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        out: dict = {}
        for item in value:
            k, eq, v = str(item).partition("=")
            out[k] = v if eq else None          # NAME alone: from the environment, as compose
        return out
    m.errors.add(path, f"{show(value)} is not a mapping or a list of NAME=value")
    return {}


def _env_file(m: _Mapper, value: Any, path: KeyPath) -> list[str]:
    out = []
    for i, item in enumerate([value] if isinstance(value, str) else list(value or [])):
        if isinstance(item, dict):
            if item.get("required", True) is not True:
                m.refuse(path + (i, "required"), f"an optional env_file is {_NOT_YET}",
                         "create the file (it may be empty) and drop required: false")
            item = item.get("path")
        out.append(str(item))
    return out


def _ports(m: _Mapper, value: Any, path: KeyPath) -> list[str]:
    out = []
    for i, p in enumerate(value if isinstance(value, list) else []):
        if not isinstance(p, dict):
            out.append(str(p))
            continue
        for k in p:
            if k not in ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"):
                m.refuse(path + (i, k), f"unknown port key {show(k)}")
        if "target" not in p:
            m.errors.add(path + (i,), "a port in the long syntax needs target:")
            continue
        text = str(p["target"])
        if p.get("published") not in (None, ""):
            text = f"{p['published']}:{text}"
            if p.get("host_ip"):
                text = f"{p['host_ip']}:{text}"
        if p.get("protocol"):
            text += f"/{p['protocol']}"
        out.append(text)
    if not isinstance(value, list):
        m.errors.add(path, f"{show(value)} is not a list of ports")
    return out


def _bind_source(m: _Mapper, source: str) -> str:
    if source.startswith("~"):
        source = (m.env.get("HOME") or "/root") + source[1:]
    return posixpath.normpath(posixpath.join(m.dir, source))


def _volumes(m: _Mapper, value: Any, path: KeyPath, top: dict) -> tuple[list[str], list[str]]:
    binds: list[str] = []
    tmpfs: list[str] = []
    if not isinstance(value, list):
        m.errors.add(path, f"{show(value)} is not a list of volumes")
        return binds, tmpfs
    for i, v in enumerate(value):
        ipath = path + (i,)
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) == 1:
                m.refuse(ipath, f"anonymous volumes are {_NOT_YET}",
                         f"name it: data:{v}, with data: under the top-level volumes:")
                continue
            source, target = parts[0], parts[1]
            modes = set(parts[2].split(",")) if len(parts) > 2 else set()
            if modes - {"ro", "rw", "z", "Z"}:
                m.refuse(ipath, f"volume options {show(parts[2])} are {_NOT_YET} (only ro and rw)")
                continue
            ro = "ro" in modes
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        elif isinstance(v, dict):
            for k in v:
                if k not in ("type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"):
                    m.refuse(ipath + (k,), f"unknown volume key {show(k)}")
            kind, source, target = v.get("type"), v.get("source"), v.get("target")
            ro = v.get("read_only") is True
            if not isinstance(target, str):
                m.errors.add(ipath, "a volume in the long syntax needs target:")
                continue
            if kind == "tmpfs":
                opts = v.get("tmpfs") or {}
                extra = [f"size={opts['size']}"] if "size" in opts else []
                extra += [f"mode={opts['mode']:o}" if isinstance(opts.get("mode"), int) else f"mode={opts['mode']}"] \
                    if "mode" in opts else []
                tmpfs.append(target + (":" + ",".join(extra) if extra else ""))
                continue
            if kind not in ("bind", "volume"):
                m.refuse(ipath + ("type",), f"volume type {show(kind)} is not supported (bind, volume, tmpfs)")
                continue
            if (v.get("volume") or {}).get("nocopy"):
                m.refuse(ipath + ("volume", "nocopy"), f"nocopy is {_NOT_YET}")
                continue
            if (v.get("bind") or {}).get("propagation"):
                m.refuse(ipath + ("bind", "propagation"), f"bind propagation is {_NOT_YET}")
                continue
            if not source:
                m.refuse(ipath, f"anonymous volumes are {_NOT_YET}", "give it a source: (a named volume)")
                continue
            source = str(source)
        else:
            m.errors.add(ipath, f"{show(v)} is not a volume")
            continue
        if kind == "bind":
            source = _bind_source(m, source)
        elif source not in top:
            m.errors.add(ipath, f"refers to undefined volume {show(source)}",
                         f"declare it under the top-level volumes: ({source}: {{}})")
            continue
        binds.append(f"{source}:{target}" + (":ro" if ro else ""))
    return binds, tmpfs


def _ulimits(m: _Mapper, value: Any, path: KeyPath) -> list[str]:
    if not isinstance(value, dict):
        m.errors.add(path, f"{show(value)} is not a mapping of limits")
        return []
    out = []
    for name, limit in value.items():
        if isinstance(limit, dict):
            out.append(f"{name}={limit.get('soft')}:{limit.get('hard')}")
        else:
            out.append(f"{name}={limit}")
    return out


def _depends_on(m: _Mapper, value: Any, path: KeyPath) -> list[str]:
    if isinstance(value, list):
        return [str(d) for d in value]
    if not isinstance(value, dict):
        m.errors.add(path, f"{show(value)} is not a list or a mapping of services")
        return []
    for dep, cond in value.items():
        cond = cond or {}
        condition = cond.get("condition", "service_started")
        if condition in ("service_healthy", "service_completed_successfully"):
            m.refuse(path + (dep, "condition"), f"condition: {condition} is {_NOT_YET}",
                     "use service_started (or a list) for now: the dependency is started first")
        elif condition != "service_started":
            m.refuse(path + (dep, "condition"), f"unknown condition {show(condition)}",
                     "service_started, service_healthy or service_completed_successfully")
        if cond.get("restart"):
            m.refuse(path + (dep, "restart"), f"restart: true in depends_on is {_NOT_YET}")
        if cond.get("required", True) is not True:
            m.refuse(path + (dep, "required"), f"an optional dependency is {_NOT_YET}")
    return [str(d) for d in value]


def _deploy(m: _Mapper, value: Any, path: KeyPath, put) -> None:
    if not isinstance(value, dict):
        m.errors.add(path, f"{show(value)} is not a mapping")
        return
    for key, v in value.items():
        p = path + (key,)
        if key == "replicas":
            if v != 1:
                m.refuse(p, "one container per service: replicas other than 1 are not supported",
                         "define one service per container you want")
        elif key == "mode":
            if v != "replicated":
                m.refuse(p, f"deploy mode {show(v)} is not supported")
        elif key == "resources":
            for rk, rv in (v or {}).items():
                if rk != "limits":
                    m.refuse(p + (rk,), f"deploy.resources.{rk} is {_NOT_YET}",
                             "limits are enforced; reservations are not")
                    continue
                for lk, lv in (rv or {}).items():
                    target = {"cpus": "cpus", "memory": "memory", "pids": "pids"}.get(lk)
                    if target is None:
                        m.refuse(p + (rk, lk), f"deploy.resources.limits.{lk} is {_NOT_YET}")
                    elif target == "cpus":
                        try:
                            put("cpus", float(lv), "deploy")
                        except (TypeError, ValueError):
                            m.errors.add(p + (rk, lk), f"{show(lv)} is not a number of CPUs")
                    else:
                        put(target, lv, "deploy")
        else:
            m.refuse(p, f"deploy.{key} is not supported",
                     "restart: and the resource keys at the service level do the same")


def _networks(m: _Mapper, value: Any, path: KeyPath, put) -> None:
    entries = {str(n): None for n in value} if isinstance(value, list) else value
    if not isinstance(entries, dict):
        m.errors.add(path, f"{show(value)} is not a list or a mapping of networks")
        return
    for name, body in entries.items():
        p = path + (name,)
        if name != "default":
            m.refuse(p, f"user-defined networks are {_NOT_YET}",
                     "remove networks: to use the default bridge (ipv4_address goes under default:)")
            continue
        for key, v in (body or {}).items():
            if key == "ipv4_address":
                put("ip", str(v), "networks")
            else:
                m.refuse(p + (key,), f"networks.default.{key} is {_NOT_YET}")
