"""The compose front end: a Compose Specification file mapped onto the engine's own spec (one
model, two front ends). Pure: the file's text and its .env's variables come in, a native spec
document (`stack`, `volumes`, `containers`) goes out, every line of it mapped back to the
compose file's, so a mistake is reported at the compose file's line.

What the engine cannot do yet is refused with file:line and "not supported yet"; what it will not
do (build, secrets...) is refused with what to do instead. Nothing is ignored silently, except
what compose itself ignores (`version:`, `x-*` extension fields).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any, Mapping

from reconciler.core.errors import SpecError
from reconciler.core.spec.compose_service import NOT_YET, Mapper, labels_of, service
from reconciler.core.spec.problems import SpecErrors, show

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


_DOTENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)")


def parse_dotenv(text: str, file: str) -> dict[str, str]:
    """A .env file as compose reads it: NAME=value lines, # comments, `export` allowed,
    'single' quotes literal, "double" quotes with \\n escapes, unquoted values ending at ` #`."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _DOTENV_LINE.fullmatch(line)
        if m is None:
            raise SpecError(f"not NAME=value: {line.strip()[:60]!r}", file=file, line=n)
        name, value = m.group(1), m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[name] = value
    return out


# --- interpolation, as compose does it ------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.S)
_BAD_FORMAT_HINT = "write ${VAR}, ${VAR:-default} or $$ for a literal $"


def interpolation(text: str, env: Mapping[str, str]) -> tuple[str, list[tuple[str, str | None]]]:
    """${VAR} and $VAR (unset: empty, as compose), ${VAR:-default} (unset or empty),
    ${VAR-default} (unset), ${VAR:?message} (error when unset or empty), ${VAR?message}
    (error when unset), ${VAR:+alt} / ${VAR+alt} (alt when set), $$ for a literal $. A default,
    message or alternative is interpolated too: ${A:-${B:-x}}."""
    problems: list[tuple[str, str | None]] = []
    return _interpolate(text, env, problems), problems


def _interpolate(text: str, env: Mapping[str, str], problems: list, depth: int = 0) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        nxt = text[j + 1:j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end, level = j + 2, 1             # the matching brace: defaults may nest ${...}
            while end < len(text) and level:
                level += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            m = _BRACED.fullmatch(text[j + 2:end - 1]) if level == 0 else None
            if m is None or depth > 8:
                problems.append((f"invalid interpolation format {show(text[j:end])}", _BAD_FORMAT_HINT))
            else:
                out.append(_substitute(m.group(1), m.group(2), m.group(3) or "", env, problems, depth))
            i = end
        else:
            m = _NAME.match(text, j + 1)
            if m is None:                     # a lone $ (before a space, a digit...) stays, as compose
                out.append("$")
                i = j + 1
            else:
                out.append(env.get(m.group(0)) or "")
                i = m.end()
    return "".join(out)


def _substitute(name: str, op: str | None, arg: str, env: Mapping[str, str], problems: list, depth: int) -> str:
    value = env.get(name)
    unset = value is None
    unset_or_empty = unset or value == ""
    if op is None:
        return value or ""
    if op in (":-", "-"):
        return _interpolate(arg, env, problems, depth + 1) if (unset_or_empty if op == ":-" else unset) else value
    if op in (":?", "?"):
        if unset_or_empty if op == ":?" else unset:
            message = _interpolate(arg, env, problems, depth + 1)
            problems.append((f"required variable {name} is missing a value" + (f": {message}" if message else ""),
                             f"export {name}=... or set it in .env"))
            return ""
        return value
    return _interpolate(arg, env, problems, depth + 1) if not (unset_or_empty if op == ":+" else unset) else ""


# --- the file ----------------------------------------------------------------------------------

_TOP_LEVEL_REFUSED = {
    "secrets": "mount secret files with bind volumes instead",
    "configs": "mount config files with bind volumes instead",
    "include": "merge the included files into this one",
}


def native_features(schema: Mapping | None) -> frozenset[str]:
    """What the native spec can express that compose keys map onto once the engine has it:
    "healthcheck", and "conditions" (depends_on as a map of conditions). Read from the schema,
    so the compose front end follows the native model as it grows."""
    if not schema:
        return frozenset()
    props = schema.get("$defs", {}).get("container", {}).get("properties", {})
    out = set()
    if "healthcheck" in props:
        out.add("healthcheck")
    kinds = props.get("depends_on", {}).get("type", [])
    if "object" in (kinds if isinstance(kinds, list) else [kinds]):
        out.add("conditions")
    return frozenset(out)


def to_native(data: Any, file: str, errors: SpecErrors, env: Mapping[str, str], *,
              project_name: str | None = None, schema: Mapping | None = None,
              subnet: str | None = None) -> dict | None:
    """The native spec document for a compose document (errors noted on the compose file's lines).
    schema: the native one, which says what the native model can express (native_features)."""
    m = Mapper(file, errors, env, native_features(schema))
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
            try:
                v = _top_volume(m, vname, body)
            except (TypeError, AttributeError, ValueError):
                errors.add(("volumes", vname), f"{show(body)} is not a volume definition")
                continue
            if v is not None:
                native["volumes"][vname] = v
                m.note(("volumes", vname), ("volumes", vname))
    elif volumes is not None:
        errors.add(("volumes",), f"{show(volumes)} is not a mapping of volume names")

    networks = data.get("networks")
    if isinstance(networks, dict):
        for nname, body in networks.items():
            if nname == "default" and (not body or _default_network_is_the_bridge(m, body, subnet)):
                continue
            m.refuse(("networks", nname), f"user-defined networks are {NOT_YET}",
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
        c = service(m, svc, body, native.get("volumes") or {})
        if c is not None:
            containers[svc] = c
            m.note(("containers", svc), base)
    native["containers"] = containers
    m.note(("containers",), ("services",))
    return native


def _net(text: str):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text


def _default_network_is_the_bridge(m: Mapper, body: Any, subnet: str | None) -> bool:
    """networks: {default: {ipam: {config: [{subnet: S}]}}}, which compose needs for static
    addresses, is the bridge when S is its subnet (bridge-subnet); anything else is refused."""
    path = ("networks", "default")
    if not isinstance(body, dict) or set(body) - {"ipam"} or not isinstance(body["ipam"], dict) \
            or set(body["ipam"]) - {"config", "driver"} or body["ipam"].get("driver", "default") != "default":
        return False
    configs = body["ipam"].get("config") or []
    if not isinstance(configs, list) or any(not isinstance(c, dict) or set(c) != {"subnet"} for c in configs):
        return False
    wanted = [str(c["subnet"]) for c in configs]
    if subnet is not None and [_net(w) for w in wanted] not in ([], [_net(subnet)]):
        m.refuse(path + ("ipam", "config"), f"the default network here is the bridge, subnet {subnet}, "
                 f"not {', '.join(wanted)}",
                 f"use addresses in {subnet}, or set bridge-subnet in the configuration to {wanted[0]}")
    return True


def _top_volume(m: Mapper, vname: str, body: Any) -> dict | None:
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
            out["labels"] = labels_of(m, value, path + (key,))
        elif key == "driver_opts":
            m.refuse(path + (key,), f"driver_opts are {NOT_YET}",
                     "for a bind mount use a path (./dir:/path) in the service's volumes:")
        else:
            m.refuse(path + (key,), f"unknown volume key {show(key)}")
    return out


