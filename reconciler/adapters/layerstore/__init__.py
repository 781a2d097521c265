"""Extracted image layers: overlay/<chain-id>/diff plus the seed's link/lower files and records.

A layer is complete when its record overlay-layers/<chain>.json exists. Extraction (extract.py:
one streaming pass, diff_id computed on the way, escapes refused) happens in tmp/layer-* (same
filesystem), locked by its owner with flock, and is renamed into place only after its diff_id
verified; a kill -9 leaves an unlocked staging dir that the next pull removes.
"""

from __future__ import annotations

import fcntl
import os

from reconciler.core.digest import digest_hex, sha256_digest
from reconciler.core.errors import IntegrityError, StorageError
from reconciler.core.record import FrozenRecord, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Callable

    from reconciler.core.layout import Layout

# `run` needs only lowerdirs(): the extractor (libarchive), secrets and shutil are imported by
# the functions that use them. Paths are plain strings (pathlib costs ~10 ms of imports).

SHORT_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SHORT_NAME_LEN = 26
STAGING_PREFIX = "layer-"
TRASH_PREFIX = "trash-"


class LayerRecord(FrozenRecord):
    __slots__ = ("id", "parent", "diff_digest", "compressed_digest", "compressed_size", "size")

    def __init__(self, id: str, parent: str | None, diff_digest: str,
                 compressed_digest: str | None, compressed_size: int | None, size: int):
        self._set(id,                   # chain id, "sha256:…"
                  parent,               # parent chain id
                  diff_digest,          # diff_id: sha256 of the uncompressed tar
                  compressed_digest, compressed_size,
                  size)                 # bytes of the uncompressed tar

    def to_json(self) -> dict:
        return {"id": self.id, "parent": self.parent or "", "diff-digest": self.diff_digest,
                "compressed-digest": self.compressed_digest or "",
                "compressed-size": self.compressed_size or 0, "size": self.size}

    @classmethod
    def from_json(cls, d: dict) -> "LayerRecord":
        return cls(id=d["id"], parent=d.get("parent") or None, diff_digest=d["diff-digest"],
                   compressed_digest=d.get("compressed-digest") or None,
                   compressed_size=d.get("compressed-size") or None, size=int(d.get("size", 0)))


class StagedLayer(Record):
    """A verified, extracted layer waiting in tmp/ to be published; holds its staging lock."""
    __slots__ = ("path", "diff_id", "size", "compressed_digest", "compressed_size", "lock_fd")

    def __init__(self, path: str, diff_id: str, size: int, compressed_digest: str | None,
                 compressed_size: int | None, lock_fd: int):
        self.path = path                # tmp/layer-…; the tree is path/diff
        self.diff_id = diff_id
        self.size = size
        self.compressed_digest = compressed_digest
        self.compressed_size = compressed_size
        self.lock_fd = lock_fd


# --------------------------------------------------------------------------- the store

class LayerStore:
    """Layers under overlay/ and their records under overlay-layers/.

    stage() is thread-safe and takes no engine lock; publish()/remove() change shared state and
    must run under the engine's mutation lock (one thread at a time).
    """

    def __init__(self, layout: Layout, files):
        self.layout = layout
        self.files = files  # the state-file writer (atomic JSON), given by the engine

    # -- queries

    def has(self, chain_id: str) -> bool:
        return (os.path.exists(self.layout.layer_record(chain_id))
                and os.path.isdir(f"{self.layout.layer_dir(chain_id)}/diff"))

    def get(self, chain_id: str) -> LayerRecord | None:
        try:
            return LayerRecord.from_json(self.files.read_json(self.layout.layer_record(chain_id)))
        except FileNotFoundError:
            return None

    def list(self) -> list[LayerRecord]:
        out = []
        try:
            names = os.listdir(self.layout.layers_dir)
        except FileNotFoundError:
            return out
        for name in sorted(n for n in names if n.endswith(".json") and not n.startswith(".")):
            try:
                out.append(LayerRecord.from_json(self.files.read_json(f"{self.layout.layers_dir}/{name}")))
            except FileNotFoundError:
                pass
        return out

    def short_name(self, chain_id: str) -> str:
        return _read_text(f"{self.layout.layer_dir(chain_id)}/link").strip()

    def lowerdirs(self, chain_id: str) -> list[str]:
        """['l/<own short>', 'l/<parent short>', ...]: topmost first, relative to overlay/."""
        d = self.layout.layer_dir(chain_id)
        try:
            own = "l/" + _read_text(f"{d}/link").strip()
        except FileNotFoundError:
            raise StorageError(f"layer {digest_hex(chain_id)[:12]} is missing from {self.layout.overlay_dir}",
                               hint="pull the image again") from None
        try:
            lower = _read_text(f"{d}/lower").strip()
        except FileNotFoundError:
            lower = ""
        return [own] + ([p for p in lower.split(":") if p] if lower else [])

    # -- staging

    def _tmp(self) -> str:
        os.makedirs(self.layout.tmp_dir, mode=0o700, exist_ok=True)
        return os.path.realpath(self.layout.tmp_dir)

    def _new_staging(self) -> tuple[str, int]:
        import secrets
        tmp = self._tmp()
        for _ in range(10):
            path = f"{tmp}/{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
            os.mkdir(path, 0o700)
            # a concurrent pull's cleaner may remove the dir before we hold its flock: try again
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return path, fd
            except FileNotFoundError:
                pass
            os.close(fd)
        raise StorageError(f"cannot create a staging directory in {tmp}")

    def clean_stale(self) -> int:
        """Remove staging and trash dirs whose owner is gone (its flock released). Returns count."""
        removed = 0
        try:
            entries = list(os.scandir(self.layout.tmp_dir))
        except FileNotFoundError:
            return 0
        for e in entries:
            if not (e.name.startswith(STAGING_PREFIX) or e.name.startswith(TRASH_PREFIX)):
                continue
            try:
                fd = os.open(e.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # in use by a live pull
            try:
                _rmtree(e.path)
                removed += 1
            finally:
                os.close(fd)
        return removed

    def stage(self, stream, *, diff_id: str, compressed_digest: str | None = None,
              compressed_size: int | None = None, progress: Callable[[int], None] | None = None,
              cancel: threading.Event | None = None) -> StagedLayer:
        """Extract a layer blob (read(n) file object) into a fresh staging dir and verify its
        diff_id. Raises UnsafeArchive / IntegrityError / StorageError with nothing left behind."""
        from reconciler.adapters.layerstore.extract import Cancelled, extract_stream
        path, fd = self._new_staging()
        try:
            diff = f"{path}/diff"
            os.mkdir(diff)
            os.chmod(diff, 0o755)
            result = extract_stream(stream, diff, progress, cancel)
            if result.diff_id != diff_id:
                raise IntegrityError(f"layer {digest_hex(compressed_digest or diff_id)[:12]}: its content "
                                     f"does not match the image config (diff_id {diff_id}, got "
                                     f"{result.diff_id})")
            return StagedLayer(path=path, diff_id=diff_id, size=result.size,
                               compressed_digest=compressed_digest,
                               compressed_size=compressed_size if compressed_size is not None
                               else result.compressed, lock_fd=fd)
        except Cancelled:
            self._drop(path, fd)
            raise StorageError("layer download cancelled") from None
        except BaseException:
            self._drop(path, fd)
            raise

    def _drop(self, path: str, fd: int) -> None:
        try:
            _rmtree(path)
        finally:
            os.close(fd)

    def discard(self, staged: StagedLayer) -> None:
        if staged.lock_fd >= 0:
            fd, staged.lock_fd = staged.lock_fd, -1
            self._drop(staged.path, fd)

    # -- publishing (under the engine's mutation lock)

    def publish(self, staged: StagedLayer, *, chain_id: str, parent: str | None) -> LayerRecord:
        chain_id, parent = sha256_digest(chain_id), parent and sha256_digest(parent)
        if staged.lock_fd < 0:
            raise StorageError(f"layer {digest_hex(chain_id)[:12]} was already published or discarded")
        try:
            if self.has(chain_id):
                return self.get(chain_id)  # someone else published it meanwhile
            if parent and not self.has(parent):
                raise StorageError(f"layer {digest_hex(chain_id)[:12]}: its parent "
                                   f"{digest_hex(parent)[:12]} is missing")
            final = self.layout.layer_dir(chain_id)
            if os.path.lexists(final):
                # renamed into place but its record was never written (killed): not trusted
                self._trash(final)
            short = self._new_short_name()
            _write_text(f"{staged.path}/link", short)
            if parent:
                parents = self.lowerdirs(parent)
                _write_text(f"{staged.path}/lower", ":".join(parents))
            links = self.layout.short_links_dir
            os.makedirs(links, mode=0o700, exist_ok=True)
            os.symlink(f"../{digest_hex(chain_id)}/diff", f"{links}/{short}")
            os.makedirs(self.layout.overlay_dir, mode=0o700, exist_ok=True)
            os.rename(staged.path, final)
            self.files.fsync_dir(self.layout.overlay_dir)
            record = LayerRecord(id=chain_id, parent=parent, diff_digest=staged.diff_id,
                                 compressed_digest=staged.compressed_digest,
                                 compressed_size=staged.compressed_size, size=staged.size)
            self.files.write_json(self.layout.layer_record(chain_id), record.to_json())
            return record
        finally:
            if os.path.exists(staged.path):
                _rmtree(staged.path)
            fd, staged.lock_fd = staged.lock_fd, -1
            os.close(fd)

    def _new_short_name(self) -> str:
        import secrets
        links = self.layout.short_links_dir
        while True:
            short = "".join(secrets.choice(SHORT_NAME_CHARS) for _ in range(SHORT_NAME_LEN))
            if not os.path.lexists(f"{links}/{short}"):
                return short

    def extract(self, stream, *, chain_id: str, parent: str | None, diff_id: str,
                compressed_digest: str | None = None, compressed_size: int | None = None,
                progress: Callable[[int], None] | None = None) -> LayerRecord:
        """stage() + publish(); the caller holds the mutation lock for the publish part."""
        staged = self.stage(stream, diff_id=diff_id, compressed_digest=compressed_digest,
                            compressed_size=compressed_size, progress=progress)
        return self.publish(staged, chain_id=chain_id, parent=parent)

    # -- removal (under the engine's mutation lock)

    def remove(self, chain_id: str) -> None:
        """Forget the record first (the layer stops being complete), then the short link and
        the tree (renamed into tmp/ at once, deleted after)."""
        d = self.layout.layer_dir(chain_id)
        try:
            os.unlink(self.layout.layer_record(chain_id))
        except FileNotFoundError:
            pass
        try:
            short = _read_text(f"{d}/link").strip()
            if short:
                os.unlink(f"{self.layout.short_links_dir}/{short}")
        except OSError:
            pass
        if os.path.lexists(d):
            self._trash(d)

    def _trash(self, path: str) -> None:
        import secrets
        tmp = self._tmp()
        dest = f"{tmp}/{TRASH_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        os.rename(path, dest)
        _rmtree(dest)


def _read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _rmtree(path: str) -> None:
    """Remove a tree we created, including immutable-free but read-only dirs."""
    def onerror(func, p, exc_info):
        err = exc_info[1]
        if isinstance(err, FileNotFoundError):
            return
        if isinstance(err, PermissionError):
            try:
                os.chmod(os.path.dirname(p), 0o700)
                func(p)
                return
            except OSError:
                pass
        raise err

    if os.path.lexists(path):
        import shutil
        shutil.rmtree(path, onerror=onerror)
