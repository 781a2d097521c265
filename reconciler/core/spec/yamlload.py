"""Spec YAML to Python values: YAML 1.2 core types only, the line of every key and item noted,
${VAR} interpolation, and bounds against hostile input (size, alias expansion, depth)."""

from __future__ import annotations

import re
from typing import Any, Mapping

import yaml

from reconciler.core.errors import SpecError
from reconciler.core.spec.problems import KeyPath, SpecErrors, show

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


def _native_interpolation(text: str, env: Mapping[str, str]) -> tuple[str, list[tuple[str, str]]]:
    value, missing = interpolate(text, env)
    return value, [(f"${{{name}}} is not set", f"export {name}=... or write ${{{name}:-default}}")
                   for name in missing]


def parse_yaml(text: str, file: str, env: Mapping[str, str], errors: SpecErrors,
               interpolation=None) -> Any:
    """Load one YAML document, recording the line of every key and item in errors.lines.
    interpolation(text, env) -> (text, [(problem, hint)]): the native ${VAR} rules by default
    (a compose file has its own, core.spec.compose)."""
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
    return _build(node, loader, file, env, errors, (), depth=0, interp=interpolation or _native_interpolation)


def _unsupported_tag(node, path: KeyPath, file: str, errors: SpecErrors) -> None:
    errors.note_line(path, file, _line(node), replace=False)
    tag = node.tag.replace("tag:yaml.org,2002:", "!!", 1)
    errors.add(path, f"the YAML tag {tag} is not supported here",
               hint="a spec holds plain mappings, lists, strings, numbers, booleans and null")


def _build(node, loader, file, env, errors: SpecErrors, path: KeyPath, depth: int, interp) -> Any:
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
            out[key] = _build(value_node, loader, file, env, errors, kpath, depth + 1, interp)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ:
            _unsupported_tag(node, path, file, errors)
            return None
        items = []
        for i, item in enumerate(node.value):
            ipath = path + (i,)
            errors.note_line(ipath, file, item.start_mark.line + 1)
            items.append(_build(item, loader, file, env, errors, ipath, depth + 1, interp))
        return items
    # scalar: YAML 1.2's core types; a date stays the text it is (1.2 has no timestamps)
    if node.tag == _TIMESTAMP:
        node = yaml.ScalarNode("tag:yaml.org,2002:str", node.value, node.start_mark, node.end_mark, node.style)
    if node.tag not in _SCALARS:
        _unsupported_tag(node, path, file, errors)
        return None
    if "$" in node.value:
        value, problems = interp(node.value, env)
        for problem, hint in problems:
            errors.note_line(path, file, node.start_mark.line + 1, replace=False)
            errors.add(path, problem, hint=hint)
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
