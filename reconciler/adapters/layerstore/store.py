"""Extracted image layers: overlay/<chain-id>/diff plus the seed's link/lower files and records.

A layer is complete when its record overlay-layers/<chain>.json exists. Extraction (extract.py:
one streaming pass, diff_id computed on the way, escapes refused) happens in tmp/layer-* (same
filesystem), locked by its owner with flock, and is renamed into place only after its diff_id
verified and its data reached the disk; a kill -9 leaves an unlocked staging dir that the next
pull removes. Any failure (a full disk included) leaves no record, no overlay/<chain> dir and
no staging dir, and surfaces as a StorageError naming the layer.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import Callable

from reconciler.adapters.layerstore.records import LayerRecord, StagedLayer
from reconciler.core.digest import digest_hex, sha256_digest
from reconciler.core.errors import IntegrityError, StorageError, UnsafeArchive

SHORT_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SHORT_NAME_LEN = 26
STAGING_PREFIX = "layer-"
TRASH_PREFIX = "trash-"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class LayerStore:
    """Layers under overlay/ and their records under overlay-layers/.

    stage() is thread-safe and takes no engine lock; publish()/remove() change shared state and
    must run under the engine's mutation lock (one thread at a time). max_layer_size bounds the
    uncompressed size of one layer (the config's max-layer-size, read from config_source).
    """

    def __init__(self, layout, files, *, max_layer_size: int | None = None,
                 config_source: str = "the configuration"):
        self.layout = layout
        self.files = files  # the state-file writer (atomic JSON), given by the engine
        self.max_layer_size = max_layer_size
        self.config_source = config_source

    # -- paths

    @property
    def _overlay(self) -> Path:
        return self.layout.overlay_dir

    @property
    def _links(self) -> Path:
        return self.layout.short_links_dir

    def _layer_dir(self, chain_id: str) -> Path:
        return self.layout.layer_dir(chain_id)

    def _record(self, chain_id: str) -> Path:
        return self.layout.layer_record(chain_id)

    # -- queries

    def has(self, chain_id: str) -> bool:
        return self._record(chain_id).exists() and (self._layer_dir(chain_id) / "diff").is_dir()

    def get(self, chain_id: str) -> LayerRecord | None:
        try:
            return LayerRecord.from_json(self.files.read_json(self._record(chain_id)))
        except FileNotFoundError:
            return None

    def list(self) -> list[LayerRecord]:
        out = []
        layers = self.layout.layers_dir
        if not layers.is_dir():
            return out
        for path in sorted(p for p in layers.iterdir() if p.suffix == ".json" and not p.name.startswith(".")):
            try:
                out.append(LayerRecord.from_json(self.files.read_json(path)))
            except FileNotFoundError:
                pass
        return out

    def short_name(self, chain_id: str) -> str:
        return (self._layer_dir(chain_id) / "link").read_text().strip()

    def lowerdirs(self, chain_id: str) -> list[str]:
        """['l/<own short>', 'l/<parent short>', ...]: topmost first, relative to overlay/."""
        d = self._layer_dir(chain_id)
        try:
            own = "l/" + (d / "link").read_text().strip()
        except FileNotFoundError:
            raise StorageError(f"layer {digest_hex(chain_id)[:12]} is missing from {self._overlay}",
                               hint="pull the image again") from None
        try:
            lower = (d / "lower").read_text().strip()
        except FileNotFoundError:
            lower = ""
        return [own] + [p for p in lower.split(":") if p]

    # -- staging

    def _tmp(self) -> Path:
        tmp = self.layout.tmp_dir
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tmp.resolve()

    def _new_staging(self) -> tuple[Path, int]:
        tmp = self._tmp()
        for _ in range(10):
            path = tmp / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
            path.mkdir(0o700)
            # a concurrent pull's cleaner may remove the dir before we hold its flock: try again
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if path.stat().st_ino == os.fstat(fd).st_ino:
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
            if not e.name.startswith((STAGING_PREFIX, TRASH_PREFIX)):
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
                _remove_tree(Path(e.path))
                removed += 1
            except OSError:
                pass  # left for `system check`, which reports it; a pull must not fail on it
            finally:
                os.close(fd)
        return removed

    def stage(self, stream, *, diff_id: str, compressed_digest: str | None = None,
              compressed_size: int | None = None, progress: Callable[[int], None] | None = None,
              cancel: threading.Event | None = None) -> StagedLayer:
        """Extract a layer blob (read(n) file object) into a fresh staging dir, verify its
        diff_id and flush it to disk. Raises UnsafeArchive / IntegrityError / StorageError with
        nothing left behind."""
        from reconciler.adapters.layerstore.extract import extract_stream

        label = f"layer {digest_hex(compressed_digest or diff_id)[:12]}"
        try:
            path, fd = self._new_staging()
        except OSError as e:
            raise self._storage_error(label, f"creating its staging directory in {self.layout.tmp_dir}",
                                      e) from None
        try:
            diff = path / "diff"
            diff.mkdir()
            diff.chmod(0o755)
            result = extract_stream(stream, diff, progress, cancel, self.max_layer_size)
            if result.diff_id != diff_id:
                raise IntegrityError(f"{label}: its content does not match the image config "
                                     f"(diff_id {diff_id}, got {result.diff_id})")
            _syncfs(fd)
            return StagedLayer(path=path, diff_id=diff_id, size=result.size,
                               compressed_digest=compressed_digest,
                               compressed_size=compressed_size if compressed_size is not None
                               else result.compressed, lock_fd=fd)
        except BaseException as e:
            try:
                self._drop(path, fd)
            except OSError:
                pass  # what could not be removed is a stale staging dir: the next pull removes it
            error = self._stage_error(label, e)
            if error is e:
                raise
            raise error from None

    def _stage_error(self, label: str, e: BaseException) -> BaseException:
        """What stage() raises for `e`: the project's error naming the layer, or `e` itself."""
        from reconciler.adapters.layerstore.pipeline import Cancelled, LayerTooLarge

        if isinstance(e, Cancelled):
            return StorageError("layer download cancelled")
        if isinstance(e, LayerTooLarge):
            return StorageError(f"{label}: its uncompressed size exceeds max-layer-size ({e.limit} bytes, "
                                f"set in {self.config_source})",
                                hint=f"raise or remove max-layer-size in {self.config_source}")
        if isinstance(e, UnsafeArchive):
            return UnsafeArchive(f"{label}: {e.message}", hint=e.hint)
        if isinstance(e, StorageError):
            return StorageError(f"{label}: {e.message}", hint=e.hint or self._space_hint(e.message))
        if isinstance(e, OSError):
            return self._storage_error(label, "extracting it", e)
        return e    # the registry's errors (IntegrityError...), interrupts: as they are

    def _storage_error(self, label: str, doing: str, e: OSError) -> StorageError:
        where = f" ({e.filename})" if e.filename else ""
        return StorageError(f"{label}: {doing}{where}: {e.strerror or e}",
                            hint=self._space_hint(os.strerror(e.errno) if e.errno else ""))

    def _space_hint(self, message: str) -> str | None:
        if any(os.strerror(n) in message for n in _DISK_FULL):
            return f"free space on the filesystem of {self.layout.root} and pull again"
        return None

    def _drop(self, path: Path, fd: int) -> None:
        try:
            _remove_tree(path)
        finally:
            os.close(fd)

    def discard(self, staged: StagedLayer) -> None:
        if staged.lock_fd >= 0:
            fd, staged.lock_fd = staged.lock_fd, -1
            self._drop(staged.path, fd)

    # -- publishing (under the engine's mutation lock)

    def publish(self, staged: StagedLayer, *, chain_id: str, parent: str | None) -> LayerRecord:
        chain_id, parent = sha256_digest(chain_id), parent and sha256_digest(parent)
        label = f"layer {digest_hex(chain_id)[:12]}"
        if staged.lock_fd < 0:
            raise StorageError(f"{label} was already published or discarded")
        try:
            if self.has(chain_id):
                return self.get(chain_id)  # someone else published it meanwhile
            if parent and not self.has(parent):
                raise StorageError(f"{label}: its parent {digest_hex(parent)[:12]} is missing")
            try:
                return self._publish(staged, chain_id, parent)
            except OSError as e:
                raise self._storage_error(label, f"publishing it in {self._overlay}", e) from None
        finally:
            try:
                _remove_tree(staged.path)
            except OSError:
                pass  # unlocked below: the next pull's clean_stale() removes it
            fd, staged.lock_fd = staged.lock_fd, -1
            os.close(fd)

    def _publish(self, staged: StagedLayer, chain_id: str, parent: str | None) -> LayerRecord:
        final = self._layer_dir(chain_id)
        if final.is_symlink() or final.exists():
            # renamed into place but its record was never written (killed): not trusted
            self._trash(final)
        short = self._new_short_name()
        (staged.path / "link").write_text(short)
        if parent:
            (staged.path / "lower").write_text(":".join(self.lowerdirs(parent)))
        self._links.mkdir(mode=0o700, parents=True, exist_ok=True)
        link = self._links / short
        link.symlink_to(f"../{digest_hex(chain_id)}/diff")
        try:
            self._overlay.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.rename(staged.path, final)
            try:
                self.files.fsync_dir(self._overlay)
                record = LayerRecord(id=chain_id, parent=parent, diff_digest=staged.diff_id,
                                     compressed_digest=staged.compressed_digest,
                                     compressed_size=staged.compressed_size, size=staged.size)
                self.files.write_json(self._record(chain_id), record.to_json())
            except BaseException:
                _quietly(self._trash, final)
                raise
        except BaseException:
            _quietly(link.unlink)
            raise
        return record

    def _new_short_name(self) -> str:
        while True:
            short = "".join(secrets.choice(SHORT_NAME_CHARS) for _ in range(SHORT_NAME_LEN))
            if not (self._links / short).is_symlink():
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
        d = self._layer_dir(chain_id)
        try:
            self._record(chain_id).unlink(missing_ok=True)
            try:
                short = (d / "link").read_text().strip()
                if short:
                    (self._links / short).unlink(missing_ok=True)
            except (FileNotFoundError, NotADirectoryError):
                pass
            if d.is_symlink() or d.exists():
                self._trash(d)
        except OSError as e:
            raise self._storage_error(f"layer {digest_hex(chain_id)[:12]}", "removing it", e) from None

    def _trash(self, path: Path) -> None:
        dest = self._tmp() / f"{TRASH_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        os.rename(path, dest)
        _remove_tree(dest)


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)


def _quietly(fn, *args) -> None:
    """Undo a step of a failed publish; the failure being raised says more than this one would."""
    try:
        fn(*args)
    except OSError:
        pass


def _syncfs(fd: int) -> None:
    """syncfs(2) on the filesystem of `fd` (the staging dir, opened before extraction): the layer
    reaches the disk before its record does, and a write error the kernel reports only at
    write-back (libarchive also ignores close(2)'s result) fails the layer here."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
