"""`rmi` and the removal of layers nothing uses; an image a container uses stays (or needs -f)."""

from __future__ import annotations

from typing import Callable

from reconciler.core.digest import digest_hex
from reconciler.core.errors import DockerMiniError, ImageInUse
from reconciler.core.reference import parse_reference
from reconciler.engine.containers import store
from reconciler.engine.images.catalog import familiar, layer_chain, parse_or_none


def _containers_using(engine) -> list[dict]:
    """[{id, image_id, layer, running}] for every container on disk."""
    out = []
    for rec in store.all_records(engine):
        running = rec.state.running and engine.processes.pid_alive(rec.state.pid, rec.state.pid_start)
        out.append({"id": rec.id, "image_id": rec.image_id, "layer": rec.image_layer, "running": running})
    return out


def _is_single_reference(names: list[str]) -> bool:
    """Docker's rule: all references in one repository with at most one tag."""
    refs = [r for r in map(parse_or_none, names) if r is not None]
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
        image = engine.images.resolve(name)
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
                rest = [r for r in map(parse_or_none, image.names)
                        if r is not None and str(r) != canonical and r.name == ref.name and not r.digest]
                if not rest:  # the repository's last tag: its digest references go too
                    gone += [n for n in image.names if (r := parse_or_none(n)) and r.digest and r.name == ref.name]
            out += [("Untagged", ref.familiar())] + [("Untagged", familiar(n)) for n in gone
                                                     if n != canonical]
            image = engine.images.untag(image, gone)
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
            out += [("Untagged", familiar(n)) for n in image.names]
        shown = {what for _, what in out}
        out += [("Untagged", familiar(d)) for d in repo_digests if familiar(d) not in shown]
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
