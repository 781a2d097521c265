"""Image records as the seed keeps them: overlay-images/<id>/images.json plus big-data files.

    images.json   {"id": hex, "digest": "sha256:<manifest>", "digests": [...], "names": [...],
                   "layer": <top chain id hex>, "big-data-names": [...], "big-data-sizes": {...},
                   "big-data-digests": {...}, "created": RFC 3339, "loaded": RFC 3339}
    =<base64(d)>  the raw bytes of the config (d = its digest, = the image id) and of each manifest

Names are canonical references ("docker.io/library/busybox:latest", "host:5000/x@sha256:…").
A name belongs to one image at a time: registering it on an image takes it from any other.
images.json is written last (big-data first), so a crash leaves either no image or a whole one.
Every write is atomic (the engine hands in the state-file writer); callers hold the engine's
mutation lock for register/remove/untag.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.core.digest import digest_hex, sha256_digest
from reconciler.core.errors import ImageNotFound, InvalidArgument, InvalidReference, StorageError
from reconciler.core.hashing import sha256_of
from reconciler.core.reference import Reference, parse_reference
from reconciler.core.timestamps import rfc3339

if TYPE_CHECKING:
    from reconciler.core.layout import Layout

RECORD_FILE = "images.json"
_HEX = frozenset("0123456789abcdef")


def _id_prefix(text: str) -> str | None:
    """The hex of "[sha256:]<1-64 lowercase hex>" (a full or abbreviated image id), else None."""
    hex_part = text.removeprefix("sha256:")
    return hex_part if 0 < len(hex_part) <= 64 and _HEX.issuperset(hex_part) else None


def big_data_file(key: str) -> str:
    encoded = base64.b64encode(key.encode()).decode()
    if "/" in encoded:  # never for "sha256:<hex>" keys; refuse rather than write a path
        raise StorageError(f"big-data key {key!r} cannot be a file name")
    return "=" + encoded


def now_rfc3339() -> str:
    return rfc3339(time.time_ns(), digits=6)


@dataclass(frozen=True)
class ImageRecord:
    id: str                     # "sha256:<hex>" (digest of the config bytes)
    digest: str                 # the manifest digest it was last pulled by
    names: tuple[str, ...]      # canonical references
    layer: str                  # top chain id, "sha256:<hex>"
    created: str
    loaded: str
    digests: tuple[str, ...] = ()           # every manifest digest seen for this config
    big_data_names: tuple[str, ...] = ()
    big_data_sizes: dict = field(default_factory=dict)
    big_data_digests: dict = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return digest_hex(self.id)[:12]

    def tags(self) -> list[Reference]:
        return [r for r in map(_parse_name, self.names) if r is not None and r.tag and not r.digest]

    def repo_digests(self) -> list[str]:
        """name@digest for every repository the image is known under (Docker's RepoDigests)."""
        repos = []
        for r in filter(None, map(_parse_name, self.names)):
            if r.name not in repos:
                repos.append(r.name)
        out = []
        for repo in repos:
            for d in self.digests or (self.digest,):
                ref = f"{repo}@{d}"
                if ref not in out:
                    out.append(ref)
        return out

    def to_json(self) -> dict:
        return {"id": digest_hex(self.id), "digest": self.digest, "digests": list(self.digests),
                "names": list(self.names), "layer": digest_hex(self.layer),
                "big-data-names": list(self.big_data_names), "big-data-sizes": self.big_data_sizes,
                "big-data-digests": self.big_data_digests, "created": self.created,
                "loaded": self.loaded}

    @classmethod
    def from_json(cls, d: dict) -> "ImageRecord":
        return cls(id=sha256_digest(d["id"]), digest=d.get("digest", ""), names=tuple(d.get("names") or ()),
                   layer=sha256_digest(d["layer"]) if d.get("layer") else "", created=d.get("created", ""),
                   loaded=d.get("loaded", ""), digests=tuple(d.get("digests") or ()),
                   big_data_names=tuple(d.get("big-data-names") or ()),
                   big_data_sizes=dict(d.get("big-data-sizes") or {}),
                   big_data_digests=dict(d.get("big-data-digests") or {}))


def _parse_name(name: str) -> Reference | None:
    try:
        return parse_reference(name)
    except InvalidReference:
        return None


class ImageStore:
    def __init__(self, layout: Layout, files, default_host: str = "docker.io"):
        self.layout = layout
        self.files = files  # the state-file writer (atomic writes, JSON), given by the engine
        self.default_host = default_host  # the configured `default-host` for short names

    # -- reading

    def _record_path(self, image_id: str) -> Path:
        return Path(self.layout.image_dir(image_id), RECORD_FILE)

    def get(self, image_id: str) -> ImageRecord | None:
        try:
            return ImageRecord.from_json(self.files.read_json(self._record_path(image_id)))
        except FileNotFoundError:
            return None

    def list(self) -> list[ImageRecord]:
        out = []
        try:
            dirs = list(self.layout.images_dir.iterdir())
        except FileNotFoundError:
            return out
        for d in dirs:
            rec = self.get(d.name)
            if rec is not None:
                out.append(rec)
        out.sort(key=lambda r: (r.loaded, r.id), reverse=True)
        return out

    def resolve(self, text: str) -> ImageRecord:
        """By full id, canonical name (tag or digest), or unambiguous id prefix, as Docker does."""
        if not text:
            raise InvalidArgument("an image name or id is required")
        prefix = _id_prefix(text)
        if prefix is not None and len(prefix) == 64:
            rec = self.get(prefix)
            if rec is not None:
                return rec
        try:
            ref = parse_reference(text, self.default_host)
        except InvalidReference:
            ref = None
        # every images.json read once, however many of the lookups below it takes
        records = self.list() if ref is not None or prefix is not None else []
        if ref is not None:
            name = str(ref)
            rec = next((r for r in records if name in r.names), None)
            if rec is not None:
                return rec
            if ref.digest:
                for rec in records:
                    if ref.digest in (rec.digests or (rec.digest,)) and any(
                            r and r.name == ref.name for r in map(_parse_name, rec.names)):
                        return rec
        if prefix is not None:
            found = [r for r in records if digest_hex(r.id).startswith(prefix)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidArgument(f"image id prefix {text!r} is ambiguous: it matches "
                                      f"{', '.join(r.short_id for r in found)}",
                                      hint="give more characters of the id, or a name")
        raise ImageNotFound(f"No such image: {text}")

    def config_bytes(self, image: ImageRecord) -> bytes:
        return self.big_data(image, image.id)

    def config(self, image: ImageRecord) -> dict:
        return json.loads(self.config_bytes(image))

    def big_data(self, image: ImageRecord, key: str) -> bytes:
        d = self.layout.image_dir(image.id)
        try:
            return (d / big_data_file(key)).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"image {image.short_id}: {key} is missing from {d}",
                               hint="remove the image and pull it again") from None

    # -- writing (under the engine's mutation lock)

    def register(self, *, config_raw: bytes, manifest_raw: bytes, manifest_digest: str, layer: str,
                 names: list[str], created: str | None = None, repo_digest: str | None = None,
                 extra_big_data: dict[str, bytes] | None = None,
                 ) -> tuple[ImageRecord, list[tuple[ImageRecord, str]]]:
        """Store (or update) the image of these config bytes and give it `names`, taking them from
        other images. repo_digest: what it is pulled by (an index's digest for multi-platform
        images; default the manifest's). extra_big_data: e.g. the index bytes under its digest.
        Returns (record, [(other image, name taken)])."""
        image_id = sha256_of(config_raw)
        d = self.layout.image_dir(image_id)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        old = self.get(image_id)
        blobs = {image_id: config_raw, manifest_digest: manifest_raw, **(extra_big_data or {})}
        for key, data in blobs.items():
            path = d / big_data_file(key)
            try:
                stored = path.stat().st_size
            except FileNotFoundError:
                stored = None
            if stored != len(data):
                self.files.atomic_write(path, data)
        bd_names = list(old.big_data_names) if old else []
        sizes = dict(old.big_data_sizes) if old else {}
        digests = dict(old.big_data_digests) if old else {}
        for key, data in blobs.items():
            if key not in bd_names:
                bd_names.append(key)
            sizes[key] = len(data)
            digests[key] = sha256_of(data)
        all_names = list(old.names) if old else []
        for n in names:
            if n not in all_names:
                all_names.append(n)
        manifests = list(old.digests) if old else []
        if (repo_digest or manifest_digest) not in manifests:
            manifests.append(repo_digest or manifest_digest)
        record = ImageRecord(id=image_id, digest=manifest_digest, names=tuple(all_names),
                             layer=sha256_digest(layer) if layer else "", created=created or (old.created if old else now_rfc3339()),
                             loaded=now_rfc3339(), digests=tuple(manifests), big_data_names=tuple(bd_names),
                             big_data_sizes=sizes, big_data_digests=digests)
        # the new holder first: a crash in between leaves the name on both, and lookups prefer
        # the most recently loaded image, so it never points back to the old one
        self._write(record)
        taken = []
        for other in self.list():
            if other.id == image_id:
                continue
            lost = [n for n in names if n in other.names]
            if lost:
                self._write(dataclasses.replace(other, names=tuple(n for n in other.names if n not in lost)))
                taken += [(other, n) for n in lost]
        return record, taken

    def untag(self, image: ImageRecord, names: list[str]) -> ImageRecord:
        updated = dataclasses.replace(image, names=tuple(n for n in image.names if n not in names))
        self._write(updated)
        return updated

    def remove(self, image: ImageRecord) -> None:
        """The record goes first (atomically), then the big-data."""
        d = self.layout.image_dir(image.id)
        try:
            (d / RECORD_FILE).unlink()
        except FileNotFoundError:
            pass
        else:
            self.files.fsync_dir(d)
        shutil.rmtree(d, ignore_errors=True)

    def _write(self, record: ImageRecord) -> None:
        self.files.write_json(self._record_path(record.id), record.to_json())
