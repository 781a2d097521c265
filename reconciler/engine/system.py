"""Housekeeping across the engine: what a crash left behind (`system check`) and what is no
longer used (`system prune`). Each area's own checks do the work; this composes them."""

from __future__ import annotations

import os
import shutil

from reconciler.adapters import overlay
from reconciler.core.errors import DockerMiniError
from reconciler.engine import containers, images, network


def check(engine, repair: bool = False) -> list[str]:
    """Describe every leftover of an interrupted command; remove them when repair is set.
    Images and running containers are never removed here."""
    found = _check_containers(engine, repair)
    found += images.check_storage(engine, repair=repair)
    if repair:
        found += [f"stale network endpoint torn down: {what}" for what in network.cleanup_stale(engine)]
    return found


def _check_containers(engine, repair: bool) -> list[str]:
    found = []
    layout = engine.layout
    with engine.mutation():
        on_disk = sorted(os.listdir(layout.containers_dir)) if os.path.isdir(layout.containers_dir) else []
        for cid in on_disk:
            if not os.path.exists(f"{layout.container_dir(cid)}/container.json"):
                found.append(f"container dir without a record (a create never finished): "
                             f"{layout.container_dir(cid)}")
                if repair:
                    overlay.remove_rw_layer(layout, cid)
                    shutil.rmtree(layout.container_dir(cid), ignore_errors=True)
        for cid in containers.unreadable_records(engine):
            found.append(f"container record unreadable (a torn write?): "
                         f"{layout.container_dir(cid)}/container.json")
            if repair:
                engine.runtime.delete(cid, force=True)
                overlay.remove_rw_layer(layout, cid)
                shutil.rmtree(layout.container_dir(cid), ignore_errors=True)
        for state in containers.list_containers(engine, all=True):
            if state.status == "dead":
                found.append(f"container {state.id[:12]} ({state.name}) is dead: a create or remove "
                             f"was interrupted")
                if repair:
                    containers.remove(engine, state.id, force=True)
    return found


def prune(engine, all_images: bool = False) -> dict[str, list[str]]:
    """Docker's `system prune`: stopped containers, unused images (dangling ones, or every image
    no container uses with all_images), then the network if nothing uses it."""
    removed: dict[str, list[str]] = {"containers": [], "images": [], "network": [], "errors": []}
    in_use = set()
    for state in containers.list_containers(engine, all=True):
        if state.status in ("created", "exited", "dead"):
            try:
                containers.remove(engine, state.id, force=False)
                removed["containers"].append(state.id)
                continue
            except DockerMiniError as e:
                removed["errors"].append(f"container {state.id[:12]}: {e.message}")
        in_use.add(state.image_id)          # it stays, and so does its image
    for image in engine.images.list():
        if image.id in in_use or (image.tags() and not all_images):
            continue
        try:
            images.remove_image(engine, image.id, force=False)
            removed["images"].append(image.id)
        except DockerMiniError as e:
            removed["errors"].append(f"image {image.short_id}: {e.message}")
    images.prune_layers(engine)
    removed["network"] = network.prune(engine)
    return removed
