"""Loading a stack: YAML files merged, validated against the schema, then normalized into a
Stack with the checks the schema cannot express: each container in spec.service (env files, limits,
ports, volumes), its healthcheck in spec.healthcheck, then across containers spec.addresses (ips,
macs) and spec.dependencies (unknown or cyclic depends_on, the start order)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from reconciler.core.errors import SpecError
from reconciler.core.spec import compose
from reconciler.core.spec.addresses import check_addresses
from reconciler.core.spec.dependencies import check_dependencies
from reconciler.core.spec.model import ImageSpec, ServiceSpec, Stack
from reconciler.core.spec.problems import KeyPath, SpecErrors, show
from reconciler.core.spec.schema import ValidCache, check_schema
from reconciler.core.spec.service import check_reference, normalize_service
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
        check_reference(spec.ref, ("images", i) + (("ref",) if isinstance(img, dict) else ()), errors, file)
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
            s = normalize_service(stack_name, svc, body, file, env, errors, host_cpus, read_env_file,
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

    check_addresses(services, errors, subnet)
    order = check_dependencies(services, errors)
    errors.raise_if_any()
    ordered = {name: services[name] for name in order}
    files = tuple(f for f, _ in docs)
    return Stack(name=stack_name, images=tuple(images.values()), containers=ordered, files=files,
                 volumes=own_volumes)
