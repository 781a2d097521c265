"""Validation against specs/stack.schema.json (the one definition of a valid spec), with errors
worded for people: unknown keys with a close match, wrong types, missing keys."""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any, Mapping

from reconciler.core.spec.problems import KeyPath, SpecErrors, show

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


def check_schema(data: Any, schema: Mapping, errors: SpecErrors, cache: ValidCache | None = None) -> None:
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


def _report(err, errors: SpecErrors) -> None:
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


def _name_path(err, path: KeyPath) -> KeyPath:
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
