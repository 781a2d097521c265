"""Stack specs: YAML text in, a validated, normalized Stack out. Pure: the caller reads the files,
the schema (specs/stack.schema.json, the one definition of a valid spec) and any env_file.

Every mistake is reported with its file, line and key path, and all of them at once:

    stack.yaml:14 containers.web.memory: "12x" is not a size
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from reconciler.core.envfile import parse_env_file
from reconciler.core.labels import RESERVED_PREFIX as RESERVED_LABEL_PREFIX
from reconciler.core.errors import InvalidArgument, SpecError
from reconciler.core.limits import Resources, parse_resources
from reconciler.core.units import parse_size


HASH_VERSION = "v1"

Path_ = tuple  # a key path: ("containers", "web", "memory") or ("images", 0)


# ---------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class ImageSpec:
    ref: str
    state: str = "present"          # present | absent
    pull: str = "missing"           # missing | always | never


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    container_name: str
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()                     # "K=V", env_file first, env overriding
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    resources: Resources = field(default_factory=Resources)   # applied in place: not hashed
    disk: int | None = None
    ip: str | None = None
    mac: str | None = None
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    network: str = "bridge"
    restart: str = "no"                           # applied by the watcher: not hashed
    depends_on: tuple[str, ...] = ()              # services, including a container:NAME network peer
    stop_signal: str | None = None
    stop_grace_period: int | None = None          # seconds
    labels: tuple[tuple[str, str], ...] = ()
    state: str = "running"                        # running | stopped | absent

    def hashed_fields(self) -> dict:
        """The fields whose change needs a new container, canonical (empty values left out, so a
        field added in a later version does not change the hash of specs that do not use it)."""
        d = {
            "image": self.image,
            "command": list(self.command) if self.command is not None else None,
            "entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
            "env": list(self.env),
            "working_dir": self.working_dir,
            "user": self.user,
            "hostname": self.hostname,
            "disk": self.disk,
            "ip": self.ip,
            "mac": self.mac,
            "ports": list(self.ports),
            "volumes": list(self.volumes),
            "network": None if self.network == "bridge" else self.network,
            "stop_signal": self.stop_signal,
            "stop_grace_period": self.stop_grace_period,
            "labels": dict(self.labels),
        }
        return {k: v for k, v in d.items() if v not in (None, [], {})}

    @property
    def spec_hash(self) -> str:
        return spec_hash(self.hashed_fields())


@dataclass(frozen=True)
class Stack:
    name: str
    images: tuple[ImageSpec, ...]                 # explicit entries and every container's image
    containers: dict[str, ServiceSpec]            # in a dependency order (dependencies first)
    files: tuple[str, ...] = ()

    def image_spec(self, ref: str) -> ImageSpec:
        for img in self.images:
            if img.ref == ref:
                return img
        return ImageSpec(ref)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(hashed: Mapping, version: str = HASH_VERSION) -> str:
    """Versioned hash: a later version keeps this function to compare old containers without
    recreating them all."""
    if version != "v1":
        raise ValueError(f"unknown spec hash version {version!r}")
    return "v1:" + hashlib.sha256(canonical_json(dict(hashed)).encode()).hexdigest()


def hash_version(value: str) -> str | None:
    return value.split(":", 1)[0] if value and ":" in value else None


# ---------------------------------------------------------------------------------------------
# errors


class _Errors:
    """Collects SpecErrors; knows each key path's file and line."""

    def __init__(self):
        self.items: list[SpecError] = []
        self.lines: dict[Path_, tuple[str, int]] = {}
        self._paths: set[Path_] = set()       # the keys reported so far
        self.scope: str | None = None      # the file being parsed, until files are merged

    def key(self, path: Path_) -> Path_:
        return ((self.scope,) if self.scope else ()) + tuple(path)

    def note_line(self, path: Path_, file: str, line: int, replace: bool = True) -> None:
        if replace or self.key(path) not in self.lines:
            self.lines[self.key(path)] = (file, line)

    def where(self, path: Path_) -> tuple[str | None, int | None]:
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None, None
            p = p[:-1]

    def add(self, path: Path_, message: str, hint: str | None = None, *, at: Path_ | None = None,
            scope: str | None = None):
        """Report `message` about key `path`; its line is that of `at` (default: the path itself),
        looked up under `scope` (a file name) while files are not merged yet."""
        if tuple(path) in self._paths:
            return                              # one error per key: the first says it best
        self._paths.add(tuple(path))
        where = tuple(at if at is not None else path)
        scope = scope if scope is not None else self.scope
        file, line = self.where(((scope,) if scope else ()) + where)
        self.items.append(SpecError(message, file=file, line=line, path=dotted(path) or None, hint=hint))

    def has_error_under(self, path: Path_) -> bool:
        n = len(path)
        return any(p[:n] == tuple(path) for p in self._paths)

    def raise_if_any(self):
        if not self.items:
            return
        self.items.sort(key=lambda e: (e.file or "", e.line or 0))
        if len(self.items) == 1:
            raise self.items[0]
        err = SpecError("\n".join(str(e) for e in self.items))
        err.errors = list(self.items)
        raise err


def dotted(path: Iterable) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------
# YAML with line numbers and ${VAR} interpolation

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)    # libyaml's parser when present


class _Loader(_BaseLoader):
    """YAML 1.2 booleans: only true/false. `restart: no` stays the string "no" (as editors
    using YAML 1.2 read it) instead of YAML 1.1's false."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")


def interpolate(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """${VAR}, ${VAR:-default} (default when unset or empty) and $$ for a literal $.
    Returns the text and the names of unset variables without a default."""
    missing: list[str] = []

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append(name)
                return ""
            return default
        return value

    return _VAR.sub(sub, text), missing


# Hostile input bounds. A spec file is read whole, so its size is bounded; and aliases can make a
# few hundred bytes of YAML stand for billions of nodes (the "billion laughs"), so the nodes that
# aliases add on top of the file's own are counted on the composed graph (each node once) before
# anything is built from it.
MAX_SPEC_BYTES = 1 << 20
MAX_ALIAS_NODES = 100_000
MAX_DEPTH = 64

_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_SCALARS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


def _line(node) -> int:
    return node.start_mark.line + 1


def _check_expansion(root, file: str) -> None:
    """Refuse a document whose alias expansion is out of bounds, a recursive alias, or nesting
    deeper than MAX_DEPTH; the node graph is walked with each node counted once."""
    expanded: dict[int, int] = {}       # id(node) -> nodes in its subtree once aliases expand
    on_path: set[int] = set()

    def size(node, depth: int) -> int:
        key = id(node)
        if key in expanded:
            return expanded[key]
        if key in on_path:
            raise SpecError("an alias refers to a node that contains it (recursive alias)",
                            file=file, line=_line(node))
        if depth > MAX_DEPTH:
            raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=file, line=_line(node))
        on_path.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        total = 1 + sum(size(child, depth + 1) for child in children)
        on_path.discard(key)
        if total > limit:
            raise SpecError(f"aliases expand this document beyond {MAX_ALIAS_NODES} nodes "
                            "(an alias bomb?)", file=file, line=_line(node))
        expanded[key] = total
        return total

    limit = _distinct_nodes(root) + MAX_ALIAS_NODES
    size(root, 0)


def _distinct_nodes(root) -> int:
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return len(seen)


def parse_yaml(text: str, file: str, env: Mapping[str, str], errors: _Errors) -> Any:
    """Load one YAML document, recording the line of every key and item in errors.lines."""
    if len(text) > MAX_SPEC_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        errors.items.append(SpecError(f"larger than {MAX_SPEC_BYTES >> 20} MiB: not read as a spec",
                                      file=file))
        return None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, file)
    except SpecError as e:
        errors.items.append(e)
        return None
    except RecursionError:
        errors.items.append(SpecError(f"nested more than {MAX_DEPTH} levels deep", file=file))
        return None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        errors.items.append(SpecError(f"not valid YAML: {e.problem or e}", file=file, line=line))
        return None
    except yaml.YAMLError as e:
        errors.items.append(SpecError(f"not valid YAML: {e}", file=file))
        return None
    finally:
        loader.dispose()
    if node is None:
        return None
    errors.note_line((), file, node.start_mark.line + 1)
    return _build(node, loader, file, env, errors, (), depth=0)


def _unsupported_tag(node, path: Path_, file: str, errors: _Errors) -> None:
    errors.note_line(path, file, _line(node), replace=False)
    tag = node.tag.replace("tag:yaml.org,2002:", "!!", 1)
    errors.add(path, f"the YAML tag {tag} is not supported here",
               hint="a spec holds plain mappings, lists, strings, numbers, booleans and null")


def _build(node, loader, file, env, errors: _Errors, path: Path_, depth: int) -> Any:
    if depth > MAX_DEPTH:
        errors.add(path, "nested too deeply")
        return None
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP:
            _unsupported_tag(node, path, file, errors)
            return None
        if not _merges_are_mappings(node):
            errors.note_line(path + ("<<",), file, _line(node))
            errors.add(path + ("<<",), "a merge key (<<) takes a mapping or a list of mappings")
            return None
        loader.flatten_mapping(node)          # YAML merge keys (<<: *base)
        out: dict = {}
        for key_node, value_node in node.value:
            key = None
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag in _SCALARS:
                try:
                    key = loader.construct_object(key_node, deep=True)
                except (yaml.YAMLError, ValueError):
                    key = None
            if not isinstance(key, (str, int, float, bool)) or key is None:
                errors.note_line(path + ("?",), file, _line(key_node))
                errors.add(path + ("?",), "keys must be plain strings")
                continue
            key = str(key) if not isinstance(key, str) else key
            kpath = path + (key,)
            if key in out:
                errors.note_line(kpath + ("#dup",), file, key_node.start_mark.line + 1)
                errors.add(kpath, f"duplicate key {show(key)}", at=kpath + ("#dup",))
                continue
            errors.note_line(kpath, file, key_node.start_mark.line + 1)
            out[key] = _build(value_node, loader, file, env, errors, kpath, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ:
            _unsupported_tag(node, path, file, errors)
            return None
        items = []
        for i, item in enumerate(node.value):
            ipath = path + (i,)
            errors.note_line(ipath, file, item.start_mark.line + 1)
            items.append(_build(item, loader, file, env, errors, ipath, depth + 1))
        return items
    # scalar: YAML 1.2's core types; a date stays the text it is (1.2 has no timestamps)
    if node.tag == _TIMESTAMP:
        node = yaml.ScalarNode("tag:yaml.org,2002:str", node.value, node.start_mark, node.end_mark, node.style)
    if node.tag not in _SCALARS:
        _unsupported_tag(node, path, file, errors)
        return None
    if "$" in node.value:
        value, missing = interpolate(node.value, env)
        for name in missing:
            errors.note_line(path, file, node.start_mark.line + 1, replace=False)
            errors.add(path, f"${{{name}}} is not set", hint=f"export {name}=... or write "
                       f"${{{name}:-default}}")
        if value != node.value:
            tag = node.tag
            if not node.style:                # plain scalar: its type follows the substituted text
                tag = loader.resolve(yaml.ScalarNode, value, (True, False))
            node = yaml.ScalarNode(tag, value, node.start_mark, node.end_mark, node.style)
    if node.tag not in _SCALARS:              # ${VAR} made it something else (a date)
        node = yaml.ScalarNode("tag:yaml.org,2002:str", node.value, node.start_mark, node.end_mark, node.style)
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as e:
        errors.note_line(path, file, _line(node), replace=False)
        errors.add(path, f"bad value: {e}")
        return None


def _merges_are_mappings(node) -> bool:
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE:
            continue
        merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        if not all(isinstance(m, yaml.MappingNode) and m.tag == _MAP for m in merged):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# schema validation


class ValidCache:
    """Remembers documents known to be valid against the schema, so an unchanged spec skips
    JSON Schema validation (and its import). Keys are sha256 of the document's canonical JSON;
    the caller keeps one cache per schema."""

    def known_valid(self, key: str) -> bool:
        return False

    def remember_valid(self, key: str) -> None:
        pass


def document_key(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _schema_errors(data: Any, schema: Mapping, errors: _Errors, cache: ValidCache | None = None) -> None:
    key = document_key(data) if cache is not None else None
    if key is not None and cache.known_valid(key):
        return
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    # no format checker: addresses are checked by the patterns and again by ipaddress below
    validator = Draft202012Validator(schema)
    found = False
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        found = True
        while err.context:
            fitting = _matching_branch(err)
            if not fitting:                    # no alternative takes this type of value
                kinds = []
                for sub in err.context:
                    if sub.validator == "type" and not sub.relative_path:
                        v = sub.validator_value
                        kinds += [k for k in (v if isinstance(v, list) else [v]) if k not in kinds]
                errors.add(tuple(err.absolute_path), f"{show(err.instance)} is not "
                           + " or ".join(_TYPE_NAMES.get(k, k) for k in kinds))
                break
            err = best_match(fitting)
        else:
            _report(err, errors)
    if key is not None and not found:
        cache.remember_valid(key)


_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
               "object": "a mapping", "array": "a list", "boolean": "true or false", "null": "null"}


def _matching_branch(err) -> list:
    """Of a oneOf's alternatives, the errors of those whose type fits the value (a list given
    where a list or a map is allowed is judged as a list)."""
    by_branch: dict = {}
    for sub in err.context:
        by_branch.setdefault(sub.relative_schema_path[0] if sub.relative_schema_path else None,
                             []).append(sub)
    fitting = [subs for subs in by_branch.values()
               if not any(s.validator == "type" and not s.relative_path for s in subs)]
    return [s for subs in fitting for s in subs]


def _report(err, errors: _Errors) -> None:
    path = tuple(err.absolute_path)
    schema = err.schema if isinstance(err.schema, Mapping) else {}
    v = err.validator
    inst = err.instance
    if v == "additionalProperties" and isinstance(inst, dict):
        known = sorted(schema.get("properties", {}))
        for key in inst:
            if key in schema.get("properties", {}):
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean {show(close[0])}?" if close else (
                "known keys: " + ", ".join(known) if known else None)
            errors.add(path + (key,), f"unknown key {show(key)}", hint)
    elif v == "required":
        missing = [k for k in err.validator_value if isinstance(inst, dict) and k not in inst]
        for key in missing:
            errors.add(path + (key,), f"missing required key {show(key)}", at=path)
    elif v == "propertyNames":
        pass  # reported through the inner error below (jsonschema descends with the name)
    elif v in ("pattern", "format") and "patternErrorMessage" in schema:
        errors.add(_name_path(err, path), f"{show(inst)} {schema['patternErrorMessage']}")
    elif v == "type":
        kinds = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        errors.add(path, f"{show(inst)} is not " + " or ".join(_TYPE_NAMES.get(k, k) for k in kinds))
    elif v == "enum":
        options = [str(o) for o in err.validator_value]
        close = difflib.get_close_matches(str(inst), options, n=1, cutoff=0.6)
        errors.add(path, f"{show(inst)} is not one of: {', '.join(options)}",
                   f"did you mean {show(close[0])}?" if close else None)
    elif v == "const":
        errors.add(path, f"{show(inst)} is not allowed here")
    elif v == "uniqueItems":
        errors.add(path, "has duplicate entries")
    else:
        errors.add(_name_path(err, path), f"{show(inst)}: {err.message}")


def _name_path(err, path: Path_) -> Path_:
    """A propertyNames error is about a key: point at the key itself."""
    parent = err.parent
    while parent is not None:
        if parent.validator == "propertyNames":
            return path + (err.instance,)
        parent = parent.parent
    # jsonschema ≥4 reports propertyNames failures with the name as instance and no path entry
    if err.relative_schema_path and "propertyNames" in err.relative_schema_path:
        return path + (err.instance,)
    return path


# ---------------------------------------------------------------------------------------------
# loading


def load_stack(sources: Sequence[tuple[str, str]], schema: Mapping, env: Mapping[str, str] | None = None,
               *, subnet: str | None = None, host_cpus: int = 1,
               read_env_file: Callable[[str, str], str] | None = None,
               valid_cache: ValidCache | None = None) -> Stack:
    """Load, validate and normalize a stack from (file name, text) pairs (one file or a directory's
    *.yaml, merged). read_env_file(spec_file, name) returns an env_file's text (raises OSError).
    Raises SpecError naming every mistake (file:line key.path: what)."""
    env = dict(env or {})
    errors = _Errors()
    docs: list[tuple[str, dict]] = []
    for file, text in sources:
        file_errors_before = len(errors.items)
        errors.scope = file
        data = parse_yaml(text, file, env, errors)
        if data is None and len(errors.items) == file_errors_before:
            errors.items.append(SpecError("empty spec: needs at least `stack: NAME`", file=file, line=1))
            continue
        if data is None:
            continue
        # key paths inside one file carry its name first, so lines of two files never mix
        _schema_errors(data, schema, errors, valid_cache)
        if isinstance(data, dict):
            docs.append((file, data))
    errors.scope = None
    if not sources:
        errors.items.append(SpecError("no spec files (a file, or a directory of *.yaml files)"))
    # Semantic checks run even after schema errors, so one run reports every mistake; they
    # skip what the schema already found malformed.
    return _merge_and_normalize(docs, env, errors, subnet=subnet, host_cpus=host_cpus,
                                read_env_file=read_env_file)


def _merge_and_normalize(docs, env, errors: _Errors, *, subnet, host_cpus, read_env_file) -> Stack:
    # After merging, key paths drop the file name; map them back to (file, line).
    merged_lines: dict[Path_, tuple[str, int]] = {}
    stack_name = None
    stack_file = None
    pull_policy = None
    raw_images: list[tuple[Path_, Any]] = []
    raw_containers: dict[str, tuple[str, dict]] = {}
    for file, data in docs:
        for p, loc in list(errors.lines.items()):
            if p and p[0] == file:
                merged_lines.setdefault(p[1:], loc)
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
        if spec.ref in images and images[spec.ref] != spec:
            errors.add(("images", i), f"image {show(spec.ref)} is listed twice with different "
                       f"settings", scope=file)
        images.setdefault(spec.ref, spec)

    services: dict[str, ServiceSpec] = {}
    for svc, (file, body) in raw_containers.items():
        try:
            s = _service(stack_name, svc, body, file, env, errors, host_cpus, read_env_file,
                         frozenset(raw_containers))
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
    return Stack(name=stack_name, images=tuple(images.values()), containers=ordered, files=files)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _argv(value: Any, path: Path_, errors: _Errors) -> tuple[str, ...] | None:
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


def _service(stack: str, svc: str, c: dict, file: str, env: Mapping[str, str], errors: _Errors,
             host_cpus: int, read_env_file, service_names: frozenset[str]) -> ServiceSpec | None:
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
    depends = list(c.get("depends_on") or [])
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
        volumes=tuple(c.get("volumes") or ()),
        network=network,
        restart=c.get("restart", "no"),
        depends_on=tuple(depends),
        stop_signal=c.get("stop_signal"),
        stop_grace_period=grace,
        labels=tuple(sorted(labels.items())),
        state=c.get("state", "running"),
    )


def _limit_path(base: Path_, c: dict, message: str) -> Path_:
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


def _check_addresses(services: dict[str, ServiceSpec], errors: _Errors, subnet: str | None) -> None:
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


def _check_dependencies(services: dict[str, ServiceSpec], errors: _Errors) -> list[str]:
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
