"""The local images: their layers, `images` and `inspect`."""

from __future__ import annotations

import contextlib

from reconciler.core.errors import InvalidReference
from reconciler.core.reference import Reference, parse_reference


def layer_chain(engine, top: str) -> list:
    """The layer records from `top` down to the base (missing ones end the walk)."""
    out, seen = [], set()
    current = top
    while current and current not in seen:
        seen.add(current)
        rec = engine.layers.get(current)
        if rec is None:
            break
        out.append(rec)
        current = rec.parent
    return out


def image_size(engine, image) -> int:
    return sum(r.size for r in layer_chain(engine, image.layer)) if image.layer else 0


def familiar(name: str) -> str:
    try:
        return parse_reference(name).familiar()
    except InvalidReference:
        return name


def list_images(engine) -> list[dict]:
    """One row per tag (untagged images once), newest first, as `docker images` shows them."""
    rows = []
    for image in engine.images.list():
        size = image_size(engine, image)
        base = {"id": image.id, "short_id": image.short_id, "digest": image.digest,
                "created": image.created, "size": size, "names": list(image.names)}
        tags = image.tags()
        if tags:
            for r in tags:
                rows.append({**base, "repository": r.familiar_name(), "tag": r.tag})
        else:
            repos = [r for r in map(parse_or_none, image.names) if r is not None]
            rows.append({**base, "repository": repos[0].familiar_name() if repos else "<none>",
                         "tag": "<none>"})
    rows.sort(key=lambda r: r["created"] or "", reverse=True)
    return rows


def parse_or_none(name: str) -> Reference | None:
    with contextlib.suppress(InvalidReference):
        return parse_reference(name)
    return None


def inspect_image(engine, name: str) -> dict:
    image = engine.images.resolve(name)
    config = engine.images.config(image)
    chain = layer_chain(engine, image.layer) if image.layer else []
    diffs = [f"{engine.layout.layer_dir(r.id)}/diff" for r in chain]
    graph = {"UpperDir": diffs[0], "LowerDir": ":".join(diffs[1:])} if diffs else {}
    return {
        "Id": image.id,
        "RepoTags": [r.familiar() for r in image.tags()],
        "RepoDigests": [familiar(d) for d in image.repo_digests()],
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": config.get("created", image.created),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": sum(r.size for r in chain),
        "GraphDriver": {"Name": "overlay2", "Data": graph},
        "RootFS": {"Type": "layers", "Layers": list((config.get("rootfs") or {}).get("diff_ids") or [])},
        "Metadata": {"LastTagTime": image.loaded},
    }
