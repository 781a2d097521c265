"""Pulling an image: resolve the manifest for the platform, fetch and verify the config, then download the
missing layers concurrently, each streamed straight into a staging dir and verified against its
diff_id. Layers are published in order (a layer's `lower` names its parents) under the mutation
lock, briefly; the image is registered last, under the lock, after checking again that all its
layers are there. Any failure registers nothing of the image.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from reconciler.core.digest import digest_hex
from reconciler.core.errors import (ImageNotFound, IntegrityError, InvalidReference, RegistryError,
                                    StorageError, UnsupportedManifest)
from reconciler.core.hashing import chain_ids, sha256_of
from reconciler.core.reference import Reference, parse_reference

log = logging.getLogger(__name__)

DOWNLOAD_THREADS = 4
PUBLISH_ATTEMPTS = 3


@dataclass(frozen=True)
class PullProgress:
    """One line of pull progress. id: the layer's short digest (None for image-wide lines)."""
    id: str | None
    status: str
    current: int = 0
    total: int | None = None


ProgressFn = Callable[[PullProgress], None]


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
    emit(PullProgress(None, f"WARNING: the image's platform ({offered}) does not match the host's "
                        f"({wanted}) and no platform was requested"))


def pull(engine, ref: str, platform: str | None = None, progress: ProgressFn | None = None):
    """Pull `ref` (for `platform`, "os/arch[/variant]", default the host's) and register it."""
    from reconciler.core.manifest import parse_platform

    emit = progress or (lambda p: None)
    parsed = parse_reference(ref, engine.config.default_host)
    wanted = parse_platform(platform) if platform else host_platform()
    client = engine.registry
    emit(PullProgress(None, f"{parsed.tag if not parsed.digest else parsed.digest}: "
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
                emit(PullProgress(_short(desc.digest), "Already exists"))
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
    emit(PullProgress(None, f"Digest: {resolved.repo_digest}"))
    shown = parsed.familiar()
    emit(PullProgress(None, f"Status: Image is up to date for {shown}" if up_to_date and not downloaded
                  else f"Status: Downloaded newer image for {shown}"))
    return record


def _fetch_layers(engine, client, ref, descriptors, diff_ids, chains, missing, emit) -> None:
    """Download + stage the missing layers concurrently; publish them in order as they complete."""
    layers = engine.layers
    cancel = threading.Event()

    def job(i):
        desc = descriptors[i]
        short = _short(desc.digest)
        done = [0]

        def report(n):
            done[0] += n
            emit(PullProgress(short, "Downloading", done[0], desc.size))

        with client.open_blob(ref, desc) as blob:
            staged = layers.stage(blob, diff_id=diff_ids[i], compressed_digest=desc.digest,
                                  compressed_size=desc.size, progress=report, cancel=cancel)
        return staged

    for i in missing:
        emit(PullProgress(_short(descriptors[i].digest), "Waiting", 0, descriptors[i].size))
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
                emit(PullProgress(_short(descriptors[i].digest), "Pull complete"))
            except BaseException as e:
                cancel.set()
                first_error = e
    finally:
        if first_error is not None:
            cancel.set()
        pool.shutdown(wait=True)
        for i, fut in futures.items():  # staged by a worker but never consumed (interrupted)
            if i not in consumed and not fut.cancelled() and fut.exception() is None:
                try:
                    layers.discard(fut.result())
                except Exception as e:
                    log.debug("staged layer %s not discarded: %s", i, e)
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
