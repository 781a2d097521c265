"""`system check` of image storage: what a crash can leave, described and optionally repaired."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from reconciler.engine.images.catalog import layer_chain


def check_storage(engine, repair: bool = False) -> list[str]:
    """What a crash (kill -9 at any line) can leave in image storage, described; removed when
    repair is set. Images whose layers are gone are reported, never deleted (rmi, then pull)."""
    found: list[str] = []
    layout, layers = engine.layout, engine.layers
    overlay_dir, images_dir = layout.overlay_dir, layout.images_dir
    hex64 = re.compile(r"^[0-9a-f]{64}$")
    with engine.mutation():
        n = layers.clean_stale() if repair else 0
        if n:
            found.append(f"{n} staging dir(s) of interrupted pulls in {layout.tmp_dir}")
        containers = set(os.listdir(layout.containers_dir)) if os.path.exists(layout.containers_dir) else set()
        records = {r.id.split(":", 1)[1] for r in layers.list()}
        dirs = {d for d in (os.listdir(overlay_dir) if overlay_dir.exists() else [])
                if hex64.match(d)} - containers
        for d in sorted(dirs - records):
            found.append(f"layer dir without a record (never completed): {overlay_dir / d}")
            if repair:
                layers.remove(d)
        for r in sorted(records - dirs):
            found.append(f"layer record without its dir: {layout.layer_record(r)}")
            if repair:
                layers.remove(r)
        links = layout.short_links_dir
        for name in sorted(os.listdir(links)) if links.exists() else []:
            if not (links / name).exists():
                found.append(f"dangling short link: {links / name}")
                if repair:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(links / name)
        for d in sorted(os.listdir(images_dir)) if images_dir.exists() else []:
            if not (images_dir / d / "images.json").exists():
                found.append(f"image dir without images.json (never registered): {images_dir / d}")
                if repair:
                    shutil.rmtree(images_dir / d, ignore_errors=True)
        for image in engine.images.list():
            chain = layer_chain(engine, image.layer) if image.layer else []
            config = engine.images.config(image)
            if len(chain) != len((config.get("rootfs") or {}).get("diff_ids") or []):
                found.append(f"image {image.short_id} ({', '.join(image.names) or '<none>'}) is missing "
                             f"layers: remove it and pull it again")
    return found
