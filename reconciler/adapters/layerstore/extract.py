"""One layer blob -> a directory tree, in one streaming pass, never writing outside it.

compressed bytes (gzip, zstd or none) -> libarchive's raw reader (decompression) -> sha256 of
the uncompressed tar (the diff_id) -> libarchive's tar reader -> libarchive's disk writer.
Every entry name is checked here (absolute, `..`, through a symlink of the layer, hardlink
targets) before libarchive sees it, and libarchive's own SECURE_NODOTDOT/SECURE_SYMLINKS checks
guard again. Whiteouts become overlayfs' form: `.wh.X` a 0/0 char device X, `.wh..wh..opq` the
trusted.overlay.opaque=y xattr on its directory, set after libarchive is done by walking the
tree one component at a time with O_NOFOLLOW (a hardlink to a layer's symlink is a symlink too).

libarchive's disk writer resolves relative names against the process's working directory,
which threads share; entries are therefore given absolute names inside the target directory,
whose own path is resolved (symlink-free), so SECURE_SYMLINKS checks every component without
anyone calling chdir. (SECURE_NOABSOLUTEPATHS cannot be set for that reason; the archive's own
names are refused here when absolute.)
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import stat
import threading
from ctypes import POINTER, byref, c_char_p, c_int, c_longlong, c_size_t, c_void_p
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import libarchive.ffi as ffi

from reconciler.core.errors import StorageError, UnsafeArchive

READ_CHUNK = 1 << 20
MAX_NAME = 3000  # libarchive chdirs for names longer than PATH_MAX; never let it

# A handle of our own: libarchive-c's function objects carry its errcheck wrappers.
_lib = ctypes.CDLL(ffi.libarchive_path)
_EXTRACT_OWNER, _EXTRACT_PERM, _EXTRACT_TIME, _EXTRACT_XATTR = 0x1, 0x2, 0x4, 0x80
_SECURE_SYMLINKS, _SECURE_NODOTDOT, _EXTRACT_SPARSE = 0x100, 0x200, 0x1000
EXTRACT_FLAGS = (_EXTRACT_OWNER | _EXTRACT_PERM | _EXTRACT_TIME | _EXTRACT_XATTR
                 | _SECURE_SYMLINKS | _SECURE_NODOTDOT | _EXTRACT_SPARSE)
AE_IFMT, AE_IFREG, AE_IFLNK, AE_IFCHR, AE_IFDIR = 0o170000, 0o100000, 0o120000, 0o020000, 0o040000
WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


def _bind(name, argtypes, restype):
    f = getattr(_lib, "archive_" + name)
    f.argtypes, f.restype = argtypes, restype
    return f


# Our own prototypes (no errcheck wrappers): return codes are handled here.
_read_new = _bind("read_new", [], c_void_p)
_read_free = _bind("read_free", [c_void_p], c_int)
_support_format_raw = _bind("read_support_format_raw", [c_void_p], c_int)
_support_format_tar = _bind("read_support_format_tar", [c_void_p], c_int)
_support_filter_gzip = _bind("read_support_filter_gzip", [c_void_p], c_int)
_support_filter_zstd = _bind("read_support_filter_zstd", [c_void_p], c_int)
_support_filter_none = _bind("read_support_filter_none", [c_void_p], c_int)
_read_open = _bind("read_open", [c_void_p, c_void_p, ffi.OPEN_CALLBACK, ffi.READ_CALLBACK,
                                 ffi.CLOSE_CALLBACK], c_int)
_next_header2 = _bind("read_next_header2", [c_void_p, c_void_p], c_int)
_read_data_block = _bind("read_data_block", [c_void_p, POINTER(c_void_p), POINTER(c_size_t),
                                             POINTER(c_longlong)], c_int)
_error_string = _bind("error_string", [c_void_p], c_char_p)
_write_disk_new = _bind("write_disk_new", [], c_void_p)
_write_disk_set_options = _bind("write_disk_set_options", [c_void_p, c_int], c_int)
_write_header = _bind("write_header", [c_void_p, c_void_p], c_int)
_write_data_block = _bind("write_data_block", [c_void_p, c_void_p, c_size_t, c_longlong], c_longlong)
_write_finish_entry = _bind("write_finish_entry", [c_void_p], c_int)
_write_close = _bind("write_close", [c_void_p], c_int)
_write_free = _bind("write_free", [c_void_p], c_int)
_entry_new = _bind("entry_new", [], c_void_p)
_entry_free = _bind("entry_free", [c_void_p], None)
_entry_pathname = _bind("entry_pathname", [c_void_p], c_char_p)
_entry_hardlink = _bind("entry_hardlink", [c_void_p], c_char_p)
_entry_filetype = _bind("entry_filetype", [c_void_p], c_int)
_entry_mtime = _bind("entry_mtime", [c_void_p], ctypes.c_int64)
_entry_copy_pathname = _bind("entry_copy_pathname", [c_void_p, c_char_p], None)
_entry_copy_hardlink = _bind("entry_copy_hardlink", [c_void_p, c_char_p], None)
_entry_set_filetype = _bind("entry_set_filetype", [c_void_p, ctypes.c_uint], None)
_entry_set_perm = _bind("entry_set_perm", [c_void_p, c_int], None)
_entry_set_rdev = _bind("entry_set_rdev", [c_void_p, ctypes.c_uint64], None)
_entry_set_mtime = _bind("entry_set_mtime", [c_void_p, ctypes.c_int64, ctypes.c_long], None)
_entry_set_uid = _bind("entry_set_uid", [c_void_p, ctypes.c_int64], None)
_entry_set_gid = _bind("entry_set_gid", [c_void_p, ctypes.c_int64], None)
_xattr_reset = _bind("entry_xattr_reset", [c_void_p], c_int)
_xattr_next = _bind("entry_xattr_next", [c_void_p, POINTER(c_char_p), POINTER(c_void_p),
                                         POINTER(c_size_t)], c_int)
_xattr_clear = _bind("entry_xattr_clear", [c_void_p], None)
_xattr_add = _bind("entry_xattr_add_entry", [c_void_p, c_char_p, c_void_p, c_size_t], None)
_ARCHIVE_OK, _ARCHIVE_EOF, _ARCHIVE_WARN, _ARCHIVE_FATAL = 0, 1, -20, -30



# --------------------------------------------------------------------------- streaming pipeline

class _Pipeline:
    """stream -> libarchive raw (decompress) -> sha256 -> libarchive tar -> disk, in one pass."""

    def __init__(self, stream, progress: Callable[[int], None] | None, cancel: threading.Event | None):
        self.stream = stream
        self.progress = progress
        self.cancel = cancel
        self.error: BaseException | None = None
        self.hasher = hashlib.sha256()
        self.size = 0
        self.compressed = 0
        self._inbuf = None     # keeps the bytes libarchive reads from alive
        self._raw = None
        self._tar = None
        self._raw_eof = False
        self._bptr, self._bsize, self._boff = c_void_p(), c_size_t(), c_longlong()
        self._cb_raw = ffi.READ_CALLBACK(self._read_compressed)
        self._cb_tar = ffi.READ_CALLBACK(self._read_uncompressed)

    # callbacks: never let an exception cross into C; keep it and return an error instead
    def _read_compressed(self, _a, _ctx, ptrptr):
        try:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled()
            data = self.stream.read(READ_CHUNK)
            if not data:
                return 0
            if not isinstance(data, bytes):
                data = bytes(data)
            self._inbuf = data
            self.compressed += len(data)
            if self.progress is not None:
                self.progress(len(data))
            ptrptr[0] = ctypes.cast(c_char_p(data), c_void_p)
            return len(data)
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller
            self.error = self.error or e
            return -1

    def _next_uncompressed(self) -> tuple[int, int]:
        """The next decompressed block as (address, size); (0, 0) at the end. Hashes it."""
        if self._raw_eof:
            return 0, 0
        r = _read_data_block(self._raw, byref(self._bptr), byref(self._bsize), byref(self._boff))
        if r == _ARCHIVE_EOF:
            self._raw_eof = True
            return 0, 0
        if r < _ARCHIVE_WARN:
            raise self._failure(self._raw, "decompressing the layer")
        n = self._bsize.value
        if n:
            self.hasher.update((ctypes.c_char * n).from_address(self._bptr.value))
            self.size += n
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

    def _failure(self, archive, what: str) -> BaseException:
        if self.error is not None:
            return self.error
        msg = _error_string(archive)
        text = msg.decode("utf-8", "replace") if msg else "unknown error"
        return StorageError(f"{what}: {text}")

    def open(self) -> None:
        self._raw = _read_new()
        _support_filter_gzip(self._raw)
        _support_filter_zstd(self._raw)
        _support_format_raw(self._raw)
        if _read_open(self._raw, None, ffi.NO_OPEN_CB, self._cb_raw, ffi.NO_CLOSE_CB) != _ARCHIVE_OK:
            raise self._failure(self._raw, "reading the layer")
        entry = _entry_new()
        try:
            r = _next_header2(self._raw, entry)
        finally:
            _entry_free(entry)
        if r == _ARCHIVE_EOF:
            self._raw_eof = True  # empty blob: the tar reader reports a missing archive
        elif r < _ARCHIVE_WARN:
            raise self._failure(self._raw, "reading the layer")
        self._tar = _read_new()
        _support_filter_none(self._tar)
        _support_format_tar(self._tar)
        if _read_open(self._tar, None, ffi.NO_OPEN_CB, self._cb_tar, ffi.NO_CLOSE_CB) != _ARCHIVE_OK:
            raise self._failure(self._tar, "reading the layer's tar stream")

    def drain(self) -> None:
        """Hash what follows the tar's end marker, then read the blob to its end (where the
        registry client verifies the compressed digest and size)."""
        while True:
            _addr, n = self._next_uncompressed()
            if not n and self._raw_eof:
                break
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled()
            data = self.stream.read(READ_CHUNK)
            if not data:
                break
            self.compressed += len(data)
            if self.progress is not None:
                self.progress(len(data))

    def close(self) -> None:
        for attr in ("_tar", "_raw"):
            a = getattr(self, attr)
            if a:
                _read_free(a)
                setattr(self, attr, None)


# --------------------------------------------------------------------------- entry policy

def _clean_name(raw: bytes, what: str) -> bytes:
    """Normalize an archive path to 'a/b/c' (b'' for the root); refuse absolute and '..'."""
    if raw.startswith(b"/"):
        raise UnsafeArchive(f"layer entry {what} {raw.decode(errors='replace')!r} is an absolute path")
    parts = [p for p in raw.split(b"/") if p not in (b"", b".")]
    if b".." in parts:
        raise UnsafeArchive(f"layer entry {what} {raw.decode(errors='replace')!r} contains '..'")
    name = b"/".join(parts)
    if len(name) > MAX_NAME:
        raise UnsafeArchive(f"layer entry name is longer than {MAX_NAME} bytes")
    return name


class _Extractor:
    """Applies one tar stream to a staging tree, enforcing the layer's boundaries."""

    def __init__(self, target: Path):
        self.target = bytes(target)       # absolute and symlink-free
        self.symlinks: set[bytes] = set()
        self.dirs: set[bytes] = {b""}
        self.seen: set[bytes] = set()
        self.opaque: list[bytes] = []
        self.disk = None

    def _abs(self, name: bytes) -> bytes:
        return self.target + b"/" + name if name else self.target

    def _check_parents(self, name: bytes, what: str) -> None:
        if not self.symlinks:
            return
        idx = name.find(b"/")
        while idx != -1:
            if name[:idx] in self.symlinks:
                raise UnsafeArchive(f"layer entry {what} {name.decode(errors='replace')!r} passes "
                                    f"through the symlink {name[:idx].decode(errors='replace')!r}")
            idx = name.find(b"/", idx + 1)

    def _note(self, name: bytes, filetype: int) -> None:
        if filetype == AE_IFLNK:
            self.symlinks.add(name)
        else:
            self.symlinks.discard(name)
        if filetype == AE_IFDIR:
            self.dirs.add(name)
        self.seen.add(name)

    def run(self, pipe: _Pipeline) -> None:
        self.disk = _write_disk_new()
        _write_disk_set_options(self.disk, EXTRACT_FLAGS)
        entry = _entry_new()
        try:
            tar = pipe._tar
            while True:
                r = _next_header2(tar, entry)
                if r == _ARCHIVE_EOF:
                    break
                if r < _ARCHIVE_WARN:
                    raise pipe._failure(tar, "reading the layer's tar stream")
                self._entry(pipe, tar, entry)
            if _write_close(self.disk) < _ARCHIVE_WARN:
                raise pipe._failure(self.disk, "finishing the layer")
        finally:
            _entry_free(entry)
            _write_free(self.disk)
            self.disk = None
        for name in self.opaque:
            self._mark_opaque(name)

    def _entry(self, pipe: _Pipeline, tar, entry) -> None:
        name = _clean_name(_entry_pathname(entry) or b"", "name")
        self._check_parents(name, "name")
        base = name.rsplit(b"/", 1)[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(name, base, entry)
            return
        filetype = _entry_filetype(entry) & AE_IFMT
        if not name and filetype != AE_IFDIR:
            raise UnsafeArchive("layer entry for the layer's root directory is not a directory")
        link = _entry_hardlink(entry)
        if link:
            target = _clean_name(link, "hardlink target")
            self._check_parents(target, "hardlink target")
            if target not in self.seen or target in self.dirs:
                raise UnsafeArchive(f"layer entry {name.decode(errors='replace')!r} is a hardlink to "
                                    f"{target.decode(errors='replace')!r}, which is not a file of this layer")
            if target in self.symlinks:
                filetype = AE_IFLNK  # link(2) on a symlink makes a second symlink, not a file
            _entry_copy_hardlink(entry, self._abs(target))
        if _xattr_reset(entry):
            self._drop_overlay_xattrs(entry)
        _entry_copy_pathname(entry, self._abs(name))
        self._write(pipe, tar, entry, name)
        self._note(name, filetype)

    def _write(self, pipe: _Pipeline, tar, entry, name: bytes) -> None:
        r = _write_header(self.disk, entry)
        if r < _ARCHIVE_WARN:
            self._refuse_or_fail(pipe, name)
        ptr, size, off = c_void_p(), c_size_t(), c_longlong()
        while True:
            r = _read_data_block(tar, byref(ptr), byref(size), byref(off))
            if r == _ARCHIVE_EOF:
                break
            if r < _ARCHIVE_WARN:
                raise pipe._failure(tar, "reading the layer's tar stream")
            if _write_data_block(self.disk, ptr, size, off) < _ARCHIVE_WARN:
                raise pipe._failure(self.disk, f"writing {name.decode(errors='replace')!r}")
        if _write_finish_entry(self.disk) < _ARCHIVE_WARN:
            raise pipe._failure(self.disk, f"writing {name.decode(errors='replace')!r}")

    def _refuse_or_fail(self, pipe: _Pipeline, name: bytes) -> None:
        msg = (_error_string(self.disk) or b"").decode("utf-8", "replace")
        shown = name.decode(errors="replace")
        if "symlink" in msg.lower() or ".." in msg or "absolute" in msg.lower():
            raise UnsafeArchive(f"layer entry {shown!r} refused by libarchive: {msg}")
        if pipe is not None and pipe.error is not None:
            raise pipe.error
        raise StorageError(f"writing {shown!r}: {msg or 'unknown error'}")

    def _whiteout(self, name: bytes, base: bytes, entry) -> None:
        parent = name[: len(name) - len(base)].rstrip(b"/")
        if base == OPAQUE_MARKER:
            self.opaque.append(parent)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in (b"", b".", b".."):
            raise UnsafeArchive(f"layer entry {name.decode(errors='replace')!r} is a malformed whiteout")
        target = parent + b"/" + hidden if parent else hidden
        wh = _entry_new()
        try:
            _entry_copy_pathname(wh, self._abs(target))
            _entry_set_filetype(wh, AE_IFCHR)
            _entry_set_perm(wh, 0)
            _entry_set_rdev(wh, 0)
            _entry_set_uid(wh, 0)
            _entry_set_gid(wh, 0)
            _entry_set_mtime(wh, _entry_mtime(entry), 0)
            if _write_header(self.disk, wh) < _ARCHIVE_WARN:
                self._refuse_or_fail(None, target)
            if _write_finish_entry(self.disk) < _ARCHIVE_WARN:
                self._refuse_or_fail(None, target)
        finally:
            _entry_free(wh)
        self._note(target, AE_IFCHR)

    @staticmethod
    def _drop_overlay_xattrs(entry) -> None:
        """A layer must not carry overlayfs' own trusted.overlay.* attributes (opaque, redirect...):
        those would change how the stack is merged. Others (capabilities, ACLs) are kept."""
        keep, dropped = [], False
        name, value, size = c_char_p(), c_void_p(), c_size_t()
        while _xattr_next(entry, byref(name), byref(value), byref(size)) == _ARCHIVE_OK:
            if name.value and name.value.startswith(b"trusted.overlay."):
                dropped = True
                continue
            keep.append((name.value, ctypes.string_at(value, size.value) if value.value else b""))
        if dropped:
            _xattr_clear(entry)
            for k, v in keep:
                _xattr_add(entry, k, v, len(v))

    def _mark_opaque(self, name: bytes) -> None:
        self._check_parents(name + b"/", "opaque directory")
        if name in self.symlinks:
            raise UnsafeArchive(f"opaque marker inside the symlink {name.decode(errors='replace')!r}")
        if not name:
            return  # an opaque root has nothing below it to hide
        fd = self._open_dir_nofollow(name)
        try:
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def _open_dir_nofollow(self, name: bytes) -> int:
        """Open (creating what is missing, mode 0755) the directory `name` of the layer, one
        component at a time relative to the previous one, never following a symlink: whatever
        the bookkeeping missed, nothing outside the target is opened or created."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.target, flags)
        done = b""
        try:
            for part in name.split(b"/"):
                done = done + b"/" + part if done else part
                try:
                    nxt = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, flags, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    # Linux reports a symlink as ENOTDIR, not ELOOP, when O_DIRECTORY is given
                    mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
                    kind = "a symlink" if stat.S_ISLNK(mode) else "not a directory"
                    raise UnsafeArchive(f"opaque marker in {name.decode(errors='replace')!r}: "
                                        f"{done.decode(errors='replace')!r} is {kind}") from None
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd


class Cancelled(Exception):
    """The caller's cancel event was set (another layer of the same pull failed)."""


@dataclass(frozen=True)
class Extracted:
    diff_id: str            # "sha256:…" of the uncompressed tar
    size: int               # bytes of the uncompressed tar
    compressed: int         # bytes read from the stream


def extract_stream(stream, target: Path, progress: Callable[[int], None] | None = None,
                   cancel: threading.Event | None = None) -> Extracted:
    """Extract a layer blob (a read(n) file object, read to its end) into the existing,
    symlink-free directory `target`. Raises UnsafeArchive, StorageError, Cancelled, or what the
    stream raised (e.g. the registry client's IntegrityError)."""
    pipe = _Pipeline(stream, progress, cancel)
    try:
        pipe.open()
        _Extractor(Path(target)).run(pipe)
        pipe.drain()
    finally:
        pipe.close()
    return Extracted("sha256:" + pipe.hasher.hexdigest(), pipe.size, pipe.compressed)
