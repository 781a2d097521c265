"""The compose front end's services: each compose service key mapped onto the native
container keys, or refused (core.spec.compose has the whole file)."""

from __future__ import annotations

import os
import posixpath
from typing import Any, Mapping

from reconciler.core.spec.problems import KeyPath, SpecErrors, show

NOT_YET = "not supported yet"
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
    "init": "an init process is " + NOT_YET + ": remove init: (or set it to false)",
    "extra_hosts": "extra_hosts is " + NOT_YET + ": remove it",
    "dns": "dns is " + NOT_YET + ": remove it (the host's resolv.conf is used)",
    "cpu_shares": "cpu_shares is " + NOT_YET + ": limit CPU with cpus: or cpuset: instead",
}
_FALSE_IS_FINE = {"init", "scale"}          # init: false and scale: 1 change nothing

class Mapper:
    def __init__(self, file: str, errors: SpecErrors, env: Mapping[str, str],
                 native: frozenset[str] = frozenset()):
        self.file = file
        self.errors = errors
        self.env = env
        self.native = native            # what the native model can express beyond the basics
        self.dir = posixpath.dirname(os.path.abspath(file))

    def line(self, path: KeyPath) -> int | None:
        return self.errors.where((self.file,) + tuple(path))[1]

    def note(self, native: KeyPath, compose: KeyPath) -> None:
        """native came from compose: its errors name compose's key at compose's line."""
        line = self.line(compose)
        if line is not None:
            self.errors.note_line(native, self.file, line)
        if compose:
            self.errors.alias(native, compose)

    def refuse(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.errors.add(path, message, hint)


def labels_of(m: Mapper, value: Any, path: KeyPath) -> dict:
    if isinstance(value, dict):
        return {str(k): "" if v is None else v for k, v in value.items()}
    if isinstance(value, list):
        return dict((str(item).split("=", 1) + [""])[:2] for item in value)
    m.errors.add(path, f"{show(value)} is not a mapping or a list of KEY=VALUE")
    return {}


def service(m: Mapper, svc: str, body: dict, top_volumes: dict) -> dict | None:
    base = ("services", svc)
    nbase = ("containers", svc)
    c: dict = {}

    def put(native_key: str, value: Any, compose_key: str | KeyPath) -> None:
        where = base + (compose_key if isinstance(compose_key, tuple) else (compose_key,))
        if native_key in c and c[native_key] != value:
            m.refuse(where, f"conflicts with another setting of the same limit ({show(c[native_key])})")
            return
        c[native_key] = value
        m.note(nbase + (native_key,), where)

    for key, value in body.items():
        path = base + (key,)
        try:
            _map_key(m, key, value, path, c, put, top_volumes)
        except (TypeError, AttributeError, ValueError, KeyError):
            if not m.errors.has_error_under(path):      # a value of a shape the key never takes
                m.errors.add(path, f"{show(value)} is not a valid {key}:")
    if "image" not in c and "build" not in body:
        m.errors.add(base, f"service {show(svc)} has no image:")
    return c


def _map_key(m: Mapper, key: str, value: Any, path: KeyPath, c: dict, put, top_volumes: dict) -> None:
    nbase = ("containers",) + tuple(path[1:2])
    if str(key).startswith("x-") or key == "profiles":
        return
    if key in _REFUSED:
        if key in _FALSE_IS_FINE and (value is False or value is None
                                      or (key == "scale" and value == 1 and value is not True)):
            return
        if key in ("extra_hosts", "dns") and not value:
            return
        m.refuse(path, f"{key}: is not supported" if NOT_YET not in _REFUSED[key]
                 else f"{key}: is {NOT_YET}", _REFUSED[key])
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
        put("labels", labels_of(m, value, path), key)
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
        if "healthcheck" in m.native and isinstance(value, dict):
            extra = [k for k in value if k not in HEALTHCHECK_KEYS]
            for k in extra:
                m.refuse(path + (k,), f"healthcheck.{k} is {NOT_YET}")
            if not extra:
                put("healthcheck", dict(value), key)
            return
        if isinstance(value, dict) and (value.get("disable") is True or value.get("test") in (["NONE"], "NONE")):
            return                        # no healthcheck: what the engine does anyway
        m.refuse(path, f"healthcheck: is {NOT_YET}",
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


def _environment(m: Mapper, value: Any, path: KeyPath) -> dict:
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


def _env_file(m: Mapper, value: Any, path: KeyPath) -> list[str]:
    out = []
    for i, item in enumerate([value] if isinstance(value, str) else list(value or [])):
        if isinstance(item, dict):
            if item.get("required", True) is not True:
                m.refuse(path + (i, "required"), f"an optional env_file is {NOT_YET}",
                         "create the file (it may be empty) and drop required: false")
            item = item.get("path")
        out.append(str(item))
    return out


def _ports(m: Mapper, value: Any, path: KeyPath) -> list[str]:
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


def _bind_source(m: Mapper, source: str) -> str:
    if source.startswith("~"):
        source = (m.env.get("HOME") or "/root") + source[1:]
    return posixpath.normpath(posixpath.join(m.dir, source))


def _volumes(m: Mapper, value: Any, path: KeyPath, top: dict) -> tuple[list[str], list[str]]:
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
                m.refuse(ipath, f"anonymous volumes are {NOT_YET}",
                         f"name it: data:{v}, with data: under the top-level volumes:")
                continue
            source, target = parts[0], parts[1]
            modes = set(parts[2].split(",")) if len(parts) > 2 else set()
            if modes - {"ro", "rw", "z", "Z"}:
                m.refuse(ipath, f"volume options {show(parts[2])} are {NOT_YET} (only ro and rw)")
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
            # what the engine does anyway is accepted (a missing host path is created; a
            # volume is copied up); every other option is refused, never dropped
            accepted = {"bind": {"create_host_path": (True, None)}, "volume": {"nocopy": (False, None)},
                        "tmpfs": {}}
            bad = [(sub, k) for sub in ("bind", "volume") for k, val in (v.get(sub) or {}).items()
                   if val not in accepted[sub].get(k, ())]
            if bad:
                for sub, k in bad:
                    m.refuse(ipath + (sub, k), f"{sub}.{k} is {NOT_YET}")
                continue
            if not source:
                m.refuse(ipath, f"anonymous volumes are {NOT_YET}", "give it a source: (a named volume)")
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


def _ulimits(m: Mapper, value: Any, path: KeyPath) -> list[str]:
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


HEALTHCHECK_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


def _depends_on(m: Mapper, value: Any, path: KeyPath) -> list[str] | dict:
    """A list; or, when the native model has conditions, the map of service -> {condition}."""
    if isinstance(value, list):
        return [str(d) for d in value]
    if not isinstance(value, dict):
        m.errors.add(path, f"{show(value)} is not a list or a mapping of services")
        return []
    for dep, cond in value.items():
        cond = cond or {}
        condition = cond.get("condition", "service_started")
        if condition in CONDITIONS[1:] and "conditions" in m.native:
            pass
        elif condition in CONDITIONS[1:]:
            m.refuse(path + (dep, "condition"), f"condition: {condition} is {NOT_YET}",
                     "use service_started (or a list) for now: the dependency is started first")
        elif condition != "service_started":
            m.refuse(path + (dep, "condition"), f"unknown condition {show(condition)}",
                     "service_started, service_healthy or service_completed_successfully")
        if cond.get("restart"):
            m.refuse(path + (dep, "restart"), f"restart: true in depends_on is {NOT_YET}")
        if cond.get("required", True) is not True:
            m.refuse(path + (dep, "required"), f"an optional dependency is {NOT_YET}")
    if "conditions" in m.native:
        return {str(d): {"condition": (c or {}).get("condition", "service_started")} for d, c in value.items()}
    return [str(d) for d in value]


def _deploy(m: Mapper, value: Any, path: KeyPath, put) -> None:
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
                    m.refuse(p + (rk,), f"deploy.resources.{rk} is {NOT_YET}",
                             "limits are enforced; reservations are not")
                    continue
                for lk, lv in (rv or {}).items():
                    target = {"cpus": "cpus", "memory": "memory", "pids": "pids"}.get(lk)
                    if target is None:
                        m.refuse(p + (rk, lk), f"deploy.resources.limits.{lk} is {NOT_YET}")
                    elif target == "cpus":
                        try:
                            put("cpus", float(lv), ("deploy", "resources", rk, lk))
                        except (TypeError, ValueError):
                            m.errors.add(p + (rk, lk), f"{show(lv)} is not a number of CPUs")
                    else:
                        put(target, lv, ("deploy", "resources", rk, lk))
        else:
            m.refuse(p, f"deploy.{key} is not supported",
                     "restart: and the resource keys at the service level do the same")


def _networks(m: Mapper, value: Any, path: KeyPath, put) -> None:
    entries = {str(n): None for n in value} if isinstance(value, list) else value
    if not isinstance(entries, dict):
        m.errors.add(path, f"{show(value)} is not a list or a mapping of networks")
        return
    for name, body in entries.items():
        p = path + (name,)
        if name != "default":
            m.refuse(p, f"user-defined networks are {NOT_YET}",
                     "remove networks: to use the default bridge (ipv4_address goes under default:)")
            continue
        for key, v in (body or {}).items():
            if key == "ipv4_address":
                put("ip", str(v), ("networks", name, key))
            else:
                m.refuse(p + (key,), f"networks.default.{key} is {NOT_YET}")
