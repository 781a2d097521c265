"""Stack specs: YAML text in (the native format or a compose file), a validated, normalized
Stack out. Pure: the caller reads the files, the schema (specs/stack.schema.json, the one
definition of a valid spec) and any env_file.

Every mistake is reported with its file, line and key path, and all of them at once:

    stack.yaml:14 containers.web.memory: "12x" is not a size

model      ImageSpec, ServiceSpec, Stack and the spec hash
yamlload   YAML to values with lines, ${VAR}, and the bounds against hostile input
schema     validation against the JSON Schema, worded for people
normalize  load_stack: files merged, validated and normalized, with the semantic checks
problems   the collected errors (file:line key.path: what)
compose    the compose front end: a Compose Specification file mapped onto the same model
           (compose_service: its services' keys), every line and key named as the user wrote it
"""

from reconciler.core.spec.model import (HASH_VERSION, ImageSpec, ServiceSpec, Stack, canonical_json,
                                        hash_version, spec_hash)
from reconciler.core.spec.normalize import load_stack
from reconciler.core.spec.schema import ValidCache
from reconciler.core.spec.yamlload import MAX_SPEC_BYTES, interpolate

__all__ = ["HASH_VERSION", "ImageSpec", "MAX_SPEC_BYTES", "ServiceSpec", "Stack", "ValidCache",
           "canonical_json", "hash_version", "interpolate", "load_stack", "spec_hash"]
