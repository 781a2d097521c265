"""compressed blob -> libarchive's raw reader (gzip, zstd or none) -> sha256 -> libarchive's tar reader.

One streaming pass: the diff_id is hashed from the decompressed bytes as the tar reader consumes
them, and the uncompressed size is bounded there (max-layer-size), before anything is written.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from ctypes import byref, c_char_p, c_longlong, c_size_t, c_void_p
from typing import Callable

from reconciler.adapters.layerstore import archive_ffi as la
from reconciler.core.errors import StorageError

READ_CHUNK = 1 << 20


class Cancelled(Exception):
    """The caller's cancel event was set (another layer of the same pull failed)."""


class LayerTooLarge(StorageError):
    """The layer's uncompressed tar grew past the store's max_size."""

    def __init__(self, limit: int):
        super().__init__(f"uncompressed size exceeds {limit} bytes")
        self.limit = limit


class Pipeline:
    """stream -> decompress -> hash -> tar entries, pulled by the extractor through `tar`."""

    def __init__(self, stream, progress: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None, max_size: int | None = None):
        self.stream = stream
        self.progress = progress
        self.cancel = cancel
        self.max_size = max_size
        self.error: BaseException | None = None
        self.hasher = hashlib.sha256()
        self.size = 0
        self.compressed = 0
        self.tar = None
        self._inbuf = None     # keeps the bytes libarchive reads from alive
        self._raw = None
        self._raw_eof = False
        self._bptr, self._bsize, self._boff = c_void_p(), c_size_t(), c_longlong()
        self._cb_raw = la.READ_CALLBACK(self._read_compressed)
        self._cb_tar = la.READ_CALLBACK(self._read_uncompressed)

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def _read_stream(self) -> bytes:
        self._check_cancel()
        data = self.stream.read(READ_CHUNK)
        if data:
            self.compressed += len(data)
            if self.progress is not None:
                self.progress(len(data))
        return data if isinstance(data, bytes) else bytes(data)

    # callbacks: never let an exception cross into C; keep it and return an error instead
    def _read_compressed(self, _a, _ctx, ptrptr):
        try:
            data = self._read_stream()
            if not data:
                return 0
            self._inbuf = data
            ptrptr[0] = ctypes.cast(c_char_p(data), c_void_p)
            return len(data)
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller
            self.error = self.error or e
            return -1

    def _next_uncompressed(self) -> tuple[int, int]:
        """The next decompressed block as (address, size); (0, 0) at the end. Hashes it."""
        if self._raw_eof:
            return 0, 0
        r = la.read_data_block(self._raw, byref(self._bptr), byref(self._bsize), byref(self._boff))
        if r == la.EOF:
            self._raw_eof = True
            return 0, 0
        if r < la.WARN:
            raise self.failure(self._raw, "decompressing the layer")
        n = self._bsize.value
        if n:
            self.size += n
            if self.max_size is not None and self.size > self.max_size:
                raise LayerTooLarge(self.max_size)
            self.hasher.update((ctypes.c_char * n).from_address(self._bptr.value))
        return self._bptr.value or 0, n

    def _read_uncompressed(self, _a, _ctx, ptrptr):
        try:
            while True:
                addr, n = self._next_uncompressed()
                if n or not addr and self._raw_eof:
                    ptrptr[0] = addr
                    return n
        except BaseException as e:  # noqa: BLE001
            self.error = self.error or e
            return -1

    def failure(self, archive, what: str) -> BaseException:
        """The error to raise for a failed libarchive call: what a callback raised, if anything."""
        if self.error is not None:
            return self.error
        return StorageError(f"{what}: {la.describe(archive)}")

    def open(self) -> None:
        self._raw = la.read_new()
        la.support_filter_gzip(self._raw)
        la.support_filter_zstd(self._raw)
        la.support_format_raw(self._raw)
        if la.read_open(self._raw, None, la.NO_OPEN_CB, self._cb_raw, la.NO_CLOSE_CB) != la.OK:
            raise self.failure(self._raw, "reading the layer")
        entry = la.entry_new()
        try:
            r = la.next_header2(self._raw, entry)
        finally:
            la.entry_free(entry)
        if r == la.EOF:
            self._raw_eof = True  # empty blob: the tar reader reports a missing archive
        elif r < la.WARN:
            raise self.failure(self._raw, "reading the layer")
        self.tar = la.read_new()
        la.support_filter_none(self.tar)
        la.support_format_tar(self.tar)
        if la.read_open(self.tar, None, la.NO_OPEN_CB, self._cb_tar, la.NO_CLOSE_CB) != la.OK:
            raise self.failure(self.tar, "reading the layer's tar stream")

    def drain(self) -> None:
        """Hash what follows the tar's end marker, then read the blob to its end (where the
        registry client verifies the compressed digest and size)."""
        while True:
            _addr, n = self._next_uncompressed()
            if not n and self._raw_eof:
                break
        while self._read_stream():
            pass

    def close(self) -> None:
        for attr in ("tar", "_raw"):
            a = getattr(self, attr)
            if a:
                la.read_free(a)
                setattr(self, attr, None)
