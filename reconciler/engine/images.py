"""Images: pull, ensure, list, inspect, remove.

Pull: resolve the manifest for the platform, fetch and verify the config, then download the
missing layers concurrently, each streamed straight into a staging dir and verified against its
diff_id. Layers are published in order (a layer's `lower` names its parents) under the mutation
lock, briefly; the image is registered last, under the lock, after checking again that all its
layers are there. Any failure registers nothing of the image.
"""

from __future__ import annotations

import contextlib
import json
import os

from reconciler.engine.containers import store
from reconciler.core.digest import chain_ids, digest_hex, sha256_of
from reconciler.core.errors import (DockerMiniError, ImageInUse, ImageNotFound, IntegrityError,
                                    InvalidReference, RegistryError, StorageError,
                                    UnsupportedManifest)
from reconciler.core.reference import Reference, parse_reference

from reconciler.core.record import FrozenRecord

TYPE_CHECKING = False     # only pulls need threads; `images`, `rmi` and `inspect` load this module
if TYPE_CHECKING:
    from typing import Callable
    ProgressFn = Callable[["Progress"], None]

DOWNLOAD_THREADS = 4
PUBLISH_ATTEMPTS = 3


class Progress(FrozenRecord):
    """One line of pull progress. id: the layer's short digest (None for image-wide lines)."""
    __slots__ = ("id", "status", "current", "total")

    def __init__(self, id: str | None, status: str, current: int = 0, total: int | None = None):
        self._set(id, status, current, total)




def host_platform():
    from reconciler.core.manifest import platform_for_machine
    return platform_for_machine(os.uname().machine)


def _short(digest: str) -> str:
    return digest_hex(digest)[:12]


def _names_for(ref: Reference) -> list[str]:
    """The names a pull gives: the tag, or with a digest (which wins) the digest reference."""
    return [f"{ref.name}@{ref.digest}"] if ref.digest else [f"{ref.name}:{ref.tag or 'latest'}"]


def _validate_config(raw: bytes, n_layers: int, where: str) -> tuple[dict, list[str]]:
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise RegistryError(f"{where}: the image config is not JSON ({e})") from None
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise RegistryError(f"{where}: the image config has no rootfs.diff_ids list")
    if rootfs.get("type") != "layers":
        raise RegistryError(f"{where}: unsupported rootfs type {rootfs.get('type')!r}")
    if len(diff_ids) != n_layers:
        raise IntegrityError(f"{where}: the manifest lists {n_layers} layers but the config "
                             f"{len(diff_ids)} diff_ids")
    return config, diff_ids


def _check_single_platform(config: dict, wanted, *, explicit: bool, where: str, emit) -> None:
    """An image that is not an index says its platform only in its config. As Docker: refuse a
    mismatch with an explicit --platform, warn otherwise (the user may run it under emulation)."""
    from reconciler.core.manifest import platform_matches, platform_of_config

    offered = platform_of_config(config)
    if offered is None or platform_matches(wanted, offered):
        return
    if explicit:
        raise UnsupportedManifest(f"{where}: the image is for {offered}, not the requested {wanted}",
                                  hint="it is not a multi-platform image: pull it without --platform")
    emit(Progress(None, f"WARNING: the image's platform ({offered}) does not match the host's "
                        f"({wanted}) and no platform was requested"))


def pull(engine, ref: str, platform: str | None = None, progress: ProgressFn | None = None):
    """Pull `ref` (for `platform`, "os/arch[/variant]", default the host's) and register it."""
    from reconciler.core.manifest import parse_platform

    emit = progress or (lambda p: None)
    parsed = parse_reference(ref, engine.config.default_host)
    wanted = parse_platform(platform) if platform else host_platform()
    client = engine.registry
    emit(Progress(None, f"{parsed.tag if not parsed.digest else parsed.digest}: "
                        f"Pulling from {parsed.familiar_name()}"))
    resolved = client.resolve(parsed, wanted)
    manifest = resolved.manifest
    config_raw = client.fetch_blob(parsed, manifest.config)
    config, diff_ids = _validate_config(config_raw, len(manifest.layers), parsed.familiar())
    if not resolved.index_digest:
        _check_single_platform(config, wanted, explicit=platform is not None, where=parsed.familiar(),
                               emit=emit)
    chains = chain_ids(diff_ids)
    image_id = sha256_of(config_raw)
    names = _names_for(parsed)
    layers = engine.layers
    known = engine.images.get(image_id)
    up_to_date = known is not None and all(n in known.names for n in names)

    layers.clean_stale()
    downloaded = False
    for _attempt in range(PUBLISH_ATTEMPTS):
        missing = [i for i, c in enumerate(chains) if not layers.has(c)]
        for i, desc in enumerate(manifest.layers):
            if i not in missing:
                emit(Progress(_short(desc.digest), "Already exists"))
        if missing:
            downloaded = True
            _fetch_layers(engine, client, parsed, manifest.layers, diff_ids, chains, missing, emit)
        with engine.mutation():
            if not all(layers.has(c) for c in chains):
                continue  # a layer went away meanwhile (rmi of a sharing image): fetch it again
            extra = {resolved.index_digest: resolved.index_raw} if resolved.index_digest else None
            record, _taken = engine.images.register(
                config_raw=config_raw, manifest_raw=resolved.raw, manifest_digest=resolved.manifest_digest,
                layer=chains[-1] if chains else "", names=names, created=config.get("created"),
                repo_digest=resolved.repo_digest, extra_big_data=extra)
        break
    else:
        raise StorageError(f"{parsed.familiar()}: layers kept disappearing while pulling (concurrent rmi?)",
                           hint="pull again")
    emit(Progress(None, f"Digest: {resolved.repo_digest}"))
    shown = parsed.familiar()
    emit(Progress(None, f"Status: Image is up to date for {shown}" if up_to_date and not downloaded
                  else f"Status: Downloaded newer image for {shown}"))
    return record


def _fetch_layers(engine, client, ref, descriptors, diff_ids, chains, missing, emit) -> None:
    """Download + stage the missing layers concurrently; publish them in order as they complete."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    layers = engine.layers
    cancel = threading.Event()

    def job(i):
        desc = descriptors[i]
        short = _short(desc.digest)
        done = [0]

        def report(n):
            done[0] += n
            emit(Progress(short, "Downloading", done[0], desc.size))

        with client.open_blob(ref, desc) as blob:
            staged = layers.stage(blob, diff_id=diff_ids[i], compressed_digest=desc.digest,
                                  compressed_size=desc.size, progress=report, cancel=cancel)
        return staged

    for i in missing:
        emit(Progress(_short(descriptors[i].digest), "Waiting", 0, descriptors[i].size))
    pool = ThreadPoolExecutor(max_workers=min(DOWNLOAD_THREADS, len(missing)),
                              thread_name_prefix="layer")
    futures = {i: pool.submit(job, i) for i in missing}
    consumed: set[int] = set()  # published or discarded: their staging is no longer ours
    first_error: BaseException | None = None
    try:
        for i in missing:
            try:
                staged = futures[i].result()
            except BaseException as e:
                cancel.set()
                first_error = first_error or e
                continue
            consumed.add(i)
            if first_error is not None:
                layers.discard(staged)
                continue
            try:
                with engine.mutation():
                    layers.publish(staged, chain_id=chains[i], parent=chains[i - 1] if i else None)
                emit(Progress(_short(descriptors[i].digest), "Pull complete"))
            except BaseException as e:
                cancel.set()
                first_error = e
    finally:
        if first_error is not None:
            cancel.set()
        pool.shutdown(wait=True)
        for i, fut in futures.items():  # staged by a worker but never consumed (interrupted)
            if i not in consumed and not fut.cancelled() and fut.exception() is None:
                with contextlib.suppress(Exception):
                    layers.discard(fut.result())
    if first_error is not None:
        raise _best_error(first_error, futures)


def _best_error(first: BaseException, futures) -> BaseException:
    """Prefer a real failure over the 'cancelled' of the layers stopped because of it."""
    if isinstance(first, StorageError) and "cancelled" in str(first):
        for fut in futures.values():
            e = fut.exception() if fut.done() and not fut.cancelled() else None
            if e is not None and "cancelled" not in str(e):
                return e
    return first


def ensure_image(engine, ref: str, progress: ProgressFn | None = None):
    """The local image `ref` names (name, id or short id), pulled when missing (with progress
    reported as pull does, e.g. for `run` to show like Docker's "Unable to find image")."""
    try:
        return engine.images.resolve(ref)
    except ImageNotFound:
        try:
            parse_reference(ref, engine.config.default_host)
        except InvalidReference:
            raise ImageNotFound(f"No such image: {ref}") from None
        return pull(engine, ref, progress=progress)


# --------------------------------------------------------------------------- list / inspect

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


def _familiar(name: str) -> str:
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
            repos = [r for r in map(_parse_or_none, image.names) if r is not None]
            rows.append({**base, "repository": repos[0].familiar_name() if repos else "<none>",
                         "tag": "<none>"})
    rows.sort(key=lambda r: r["created"] or "", reverse=True)
    return rows


def _parse_or_none(name: str) -> Reference | None:
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
        "RepoDigests": [_familiar(d) for d in image.repo_digests()],
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


# --------------------------------------------------------------------------- remove

def _containers_using(engine) -> list[dict]:
    """[{id, image_id, layer, running}] for every container on disk."""
    out = []
    for rec in store.all_records(engine):
        state = rec.get("state") or {}
        running = (state.get("status") == "running"
                   and engine.processes.pid_alive(state.get("pid") or 0, state.get("pid_start")))
        out.append({"id": rec["id"], "image_id": rec.get("image_id") or "", "layer": rec.get("image_layer"),
                    "running": running})
    return out


def _is_single_reference(names: list[str]) -> bool:
    """Docker's rule: all references in one repository with at most one tag."""
    refs = [r for r in map(_parse_or_none, names) if r is not None]
    if len(refs) <= 1:
        return len(refs) == 1
    tagged = [r for r in refs if not r.digest]
    if len(tagged) > 1:
        return False
    return len({r.name for r in refs}) == 1


def _is_id_prefix(image_id: str, text: str) -> bool:
    return image_id.startswith(text) or digest_hex(image_id).startswith(text)


def remove_image(engine, name: str, force: bool = False) -> list[tuple[str, str]]:
    """Docker's `rmi` of one image: [("Untagged", ref) | ("Deleted", id)] in order."""
    with engine.mutation():
        store = engine.images
        image = store.resolve(name)
        everyone = _containers_using(engine)
        users = [c for c in everyone if c["image_id"] == image.id]
        repo_digests = image.repo_digests()
        out: list[tuple[str, str]] = []
        if not _is_id_prefix(image.id, name):
            ref = parse_reference(name, engine.config.default_host)
            if not force and _is_single_reference(list(image.names)) and users:
                raise ImageInUse(f'conflict: unable to remove repository reference "{name}" (must force) - '
                                 f"container {users[0]['id'][:12]} is using its referenced image {image.short_id}")
            canonical = str(ref)
            gone = [canonical] if canonical in image.names else []
            if not ref.digest:
                rest = [r for r in map(_parse_or_none, image.names)
                        if r is not None and str(r) != canonical and r.name == ref.name and not r.digest]
                if not rest:  # the repository's last tag: its digest references go too
                    gone += [n for n in image.names if (r := _parse_or_none(n)) and r.digest and r.name == ref.name]
            out += [("Untagged", ref.familiar())] + [("Untagged", _familiar(n)) for n in gone
                                                     if n != canonical]
            image = store.untag(image, gone)
            if image.names:
                return out
            # the last name went: delete the image quietly unless a container still needs it
            if any(u["running"] for u in users) or (users and not force):
                return out
        else:
            if image.names and not _is_single_reference(list(image.names)) and not force:
                raise ImageInUse(f"conflict: unable to delete {image.short_id} (must be forced) - "
                                 f"image is referenced in multiple repositories")
            _check_conflicts(image, users, force)
            out += [("Untagged", _familiar(n)) for n in image.names]
        shown = {what for _, what in out}
        out += [("Untagged", _familiar(d)) for d in repo_digests if _familiar(d) not in shown]
        out += _delete(engine, image, everyone)
        return out


def _check_conflicts(image, users, force: bool) -> None:
    running = [u for u in users if u["running"]]
    if running:
        raise ImageInUse(f"conflict: unable to delete {image.short_id} (cannot be forced) - "
                         f"image is being used by running container {running[0]['id'][:12]}")
    if users and not force:
        raise ImageInUse(f"conflict: unable to delete {image.short_id} (must be forced) - "
                         f"image is being used by stopped container {users[0]['id'][:12]}")


def _delete(engine, image, everyone: list[dict]) -> list[tuple[str, str]]:
    """Remove the image record, then its layers that no other image or container (everyone:
    _containers_using's rows) uses."""
    out = []
    engine.images.remove(image)
    out.append(("Deleted", image.id))
    in_use: set[str] = set()
    for other in engine.images.list():
        in_use.update(r.id for r in layer_chain(engine, other.layer))
    for c in everyone:
        top = c["layer"] or (image.layer if c["image_id"] == image.id else None)
        if top:
            in_use.update(r.id for r in layer_chain(engine, top))
    for rec in layer_chain(engine, image.layer):
        if rec.id in in_use:
            break  # its parents are in use too
        engine.layers.remove(rec.id)
        out.append(("Deleted", rec.id))
    return out


def remove_images(engine, names: list[str], force: bool = False,
                  report: Callable[[str, str], None] | None = None) -> list[tuple[str, str]]:
    """rmi of several images: every one is tried; the first error is raised at the end."""
    records, errors = [], []
    for name in names:
        try:
            done = remove_image(engine, name, force)
        except DockerMiniError as e:
            errors.append(e)
            continue
        records += done
        for kind, what in done:
            if report:
                report(kind, what)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise type(errors[0])("\n".join(str(e) for e in errors))
    return records


def prune_layers(engine) -> list[str]:
    """Remove layers no image and no container needs: left by `rmi -f` of an image a stopped
    container used (once that container is gone) or by a pull that failed after some layers.
    A pull running meanwhile notices at registration and fetches what went away."""
    removed = []
    with engine.mutation():
        needed: set[str] = set()
        for image in engine.images.list():
            needed.update(r.id for r in layer_chain(engine, image.layer))
        for c in _containers_using(engine):
            image = engine.images.get(c["image_id"]) if c["image_id"] else None
            top = c["layer"] or (image.layer if image else None)
            if top:
                needed.update(r.id for r in layer_chain(engine, top))
        for rec in engine.layers.list():
            if rec.id not in needed:
                engine.layers.remove(rec.id)
                removed.append(rec.id)
    return removed


def check_storage(engine, repair: bool = False) -> list[str]:
    """What a crash (kill -9 at any line) can leave in image storage, described; removed when
    repair is set. Images whose layers are gone are reported, never deleted (rmi, then pull)."""
    import re
    import shutil
    from pathlib import Path

    found: list[str] = []
    layout, layers = engine.layout, engine.layers
    overlay_dir, images_dir = Path(layout.overlay_dir), Path(layout.images_dir)
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
        links = Path(layout.short_links_dir)
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
