"""Housekeeping across the engine: what a crash left behind (`system check`) and what is no
longer used (`system prune`).

`system check` and `system check --repair` share one list of findings, made under the lock:
each finding says what was found and carries the repair for it, so check reports exactly what
repair would touch. A kill -9 can leave, by area:

- containers: a directory without a record (create killed before its first write), a torn
  record, a record stuck in creating/removing (create or rm killed), a container half-started
  (`runc create` done, `runc start` never run), or a stopped container still holding runc
  state, its rootfs mount or its network wiring (start or stop killed half-way), a
  half-deleted directory of an rm;
- image storage: staging dirs of interrupted pulls, layer dirs without a record and records
  without a dir, dangling short links, image dirs never registered, images missing layers
  (reported only: rmi, then pull);
- network: the lease of a container that no longer exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from reconciler.core import netnames
from reconciler.core.errors import DockerMiniError, StorageError
from reconciler.engine import containers, images, network
from reconciler.engine import volumes as named_volumes

_HEX64 = re.compile(r"[0-9a-f]{64}")
# what the layer store names its staging and trash dirs in tmp/ (adapters.layerstore)
_STAGING_PREFIXES = ("layer-", "trash-")


@dataclass(frozen=True)
class Finding:
    """One leftover: what a user reads, and how to repair it (None: reported, never repaired)."""
    what: str
    repair: Callable[[], object] | None = None


def findings(engine) -> list[Finding]:
    """Every leftover of an interrupted command. Call under engine.mutation()."""
    endpoints = {ep["id"]: ep for ep in network.all_endpoints(engine) if ep.get("id")}
    return [*_container_findings(engine, endpoints), *_storage_findings(engine),
            *_network_findings(engine, endpoints)]


def check(engine, repair: bool = False) -> list[str]:
    """Describe every leftover of an interrupted command; with repair, fix each of them (the
    same list). Images and running containers are never removed here."""
    failed: list[str] = []
    with engine.mutation():
        found = findings(engine)
        if repair:
            for finding in found:
                if finding.repair is None:
                    continue
                try:
                    finding.repair()
                except (DockerMiniError, OSError) as e:
                    failed.append(f"{finding.what}: {getattr(e, 'message', None) or e}")
    if failed:
        raise StorageError("could not repair: " + "; ".join(failed))
    return [f.what if f.repair is not None or not repair else f"{f.what} (left as is)" for f in found]


# ---------------------------------------------------------------------------------------------
# containers


def _container_findings(engine, endpoints: dict[str, dict]) -> list[Finding]:
    layout = engine.layout
    cdir = layout.containers_dir
    names = sorted(os.listdir(cdir)) if cdir.is_dir() else []
    out = []
    for name in names:
        path = cdir / name
        if name.startswith(".rm-"):
            out.append(Finding(f"container dir half-deleted by an interrupted rm: {path}",
                               lambda path=path: engine.overlay.remove_tree(path)))
        elif _HEX64.fullmatch(name) and not (path / "container.json").exists():
            out.append(Finding(f"container dir without a record (a create never finished): {path}",
                               lambda cid=name: _forget_container(engine, cid)))
    for cid in containers.unreadable_records(engine):
        out.append(Finding(f"container record unreadable (a torn write?): {cdir / cid / 'container.json'}",
                           lambda cid=cid: _forget_container(engine, cid)))
    for state in containers.list_containers(engine, all=True):
        out += _container_state_findings(engine, state, endpoints.get(state.id))
    return out


def _container_state_findings(engine, state, endpoint: dict | None) -> list[Finding]:
    cid, label = state.id, f"container {state.id[:12]} ({state.name})"
    if state.status == "dead":
        return [Finding(f"{label} is dead: a create was interrupted",
                        lambda: containers.remove(engine, cid, force=True))]
    if state.status == "removing":
        return [Finding(f"{label} is half-removed: an rm was interrupted",
                        lambda: containers.remove(engine, cid, force=True))]
    runc = (engine.runtime.state(cid) or {}).get("status")
    if state.status == "running":
        if runc == "created":
            return [Finding(f"{label} is half-started: its process was created but never started "
                            f"(a start was interrupted)", lambda: engine.runtime.start(cid))]
        return []
    if state.record.state.status == "running":
        return []                   # ended by itself: the next command reaps it, as designed
    held = _held_by_stopped(engine, cid, runc, endpoint)
    if not held:
        return []
    return [Finding(f"{label} is {state.status} but still holds {', '.join(held)} (a start or "
                    f"stop was interrupted)", lambda: _release(engine, state.record))]


def _held_by_stopped(engine, cid: str, runc_status: str | None, endpoint: dict | None) -> list[str]:
    """What a container that is not running should no longer have."""
    held = []
    if runc_status is not None:
        held.append(f"runc state ({runc_status})")
    if engine.overlay.is_mounted(engine.overlay.merged_dir(engine.layout, cid)):
        held.append("its rootfs mount")
    held += _network_held(engine, cid, endpoint)
    return held


def _network_held(engine, cid: str, endpoint: dict | None) -> list[str]:
    held = ["an active network endpoint"] if endpoint and endpoint.get("active") else []
    net = engine.netlink
    netns, veth = netnames.netns_name(cid), netnames.host_veth_name(cid)
    if net.netns_exists(netns):
        held.append(f"netns {netns}")
    if net.link_exists(veth):
        held.append(f"veth {veth}")
    return held


def _release(engine, record) -> None:
    """What reaping a stopped container does: runc state, network wiring, rootfs mount."""
    engine.runtime.delete(record.id, force=True)
    network.teardown(engine, record)
    engine.overlay.unmount_rootfs(engine.layout, record.id)


def _forget_container(engine, cid: str) -> None:
    """Everything of a container whose record is missing or unreadable."""
    engine.runtime.delete(cid, force=True)
    network.release(engine, {"id": cid})
    engine.overlay.remove_rw_layer(engine.layout, cid)
    shutil.rmtree(engine.layout.container_dir(cid), ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# image storage


def _storage_findings(engine) -> list[Finding]:
    layout, layers = engine.layout, engine.layers
    overlay_dir, images_dir = layout.overlay_dir, layout.images_dir
    out = [Finding(f"staging dir of an interrupted pull: {path}", layers.clean_stale)
           for path in _stale_staging(layout.tmp_dir)]
    cdir = layout.containers_dir
    container_ids = {n.removeprefix(".rm-") for n in os.listdir(cdir)} if cdir.is_dir() else set()
    records = {r.id.split(":", 1)[1] for r in layers.list()}
    dirs = {d for d in (os.listdir(overlay_dir) if overlay_dir.is_dir() else [])
            if _HEX64.fullmatch(d)} - container_ids
    for d in sorted(dirs - records):
        out.append(Finding(f"layer dir without a record (never completed): {overlay_dir / d}",
                           lambda d=d: layers.remove(d)))
    for r in sorted(records - dirs):
        out.append(Finding(f"layer record without its dir: {layout.layer_record(r)}",
                           lambda r=r: layers.remove(r)))
    links = layout.short_links_dir
    for link in sorted(links.iterdir()) if links.is_dir() else []:
        if not link.exists():
            out.append(Finding(f"dangling short link: {link}", lambda link=link: _unlink(link)))
    for d in sorted(images_dir.iterdir()) if images_dir.is_dir() else []:
        if not (d / "images.json").exists():
            out.append(Finding(f"image dir without images.json (never registered): {d}",
                               lambda d=d: shutil.rmtree(d, ignore_errors=True)))
    for image in engine.images.list():
        chain = images.layer_chain(engine, image.layer) if image.layer else []
        config = engine.images.config(image)
        if len(chain) != len((config.get("rootfs") or {}).get("diff_ids") or []):
            out.append(Finding(f"image {image.short_id} ({', '.join(image.names) or '<none>'}) is "
                               f"missing layers: remove it and pull it again"))
    return out


def _stale_staging(tmp: Path) -> list[Path]:
    """Staging and trash dirs whose owner is gone: their flock is free (as the layer store's
    clean_stale decides, which removes them)."""
    stale = []
    for path in sorted(tmp.iterdir()) if tmp.is_dir() else []:
        if not path.name.startswith(_STAGING_PREFIXES):
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            stale.append(path)
        except OSError:
            pass                                    # a live pull is extracting into it
        finally:
            os.close(fd)
    return stale


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# ---------------------------------------------------------------------------------------------
# network


def _network_findings(engine, endpoints: dict[str, dict]) -> list[Finding]:
    """Leases whose container is gone (a create or rm killed between the two)."""
    out = []
    for cid, ep in sorted(endpoints.items()):
        if os.path.exists(engine.layout.container_dir(cid)):
            continue
        held = _network_held(engine, cid, ep)
        out.append(Finding(f"network lease of a removed container {cid[:12]}"
                           + (f" (still holding {', '.join(held)})" if held else ""),
                           lambda cid=cid: network.release(engine, {"id": cid})))
    return out


# ---------------------------------------------------------------------------------------------
# prune


def prune(engine, all_images: bool = False, volumes: bool = False) -> dict[str, list[str]]:
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
    removed["volumes"] = named_volumes.prune(engine)[0] if volumes else []
    return removed
