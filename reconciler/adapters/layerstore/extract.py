"""One layer blob -> a directory tree, in one streaming pass, never writing outside it.

pipeline.Pipeline decompresses, hashes (the diff_id) and reads the tar; this module applies its
entries with libarchive's disk writer. Every entry name is checked here (absolute, `..`, through
a symlink of the layer, hardlink targets) before libarchive sees it, and libarchive's own
SECURE_NODOTDOT/SECURE_SYMLINKS checks guard again. Whiteouts become overlayfs' form: `.wh.X` a
0/0 char device X, `.wh..wh..opq` the trusted.overlay.opaque=y xattr on its directory, set after
libarchive is done by walking the tree one component at a time with O_NOFOLLOW (a hardlink to a
layer's symlink is a symlink too).

Every write must succeed: libarchive reports a failed write(2) (ENOSPC, EIO) only as a warning
and, left alone, goes on to the next block and then extends the file to its size, sealing the
holes; a layer would be published with zeros in place of its data. Here any data write that is
not ARCHIVE_OK fails the layer, and so does every warning but one (extended attributes on a
filesystem that has none, which Docker ignores too).

libarchive's disk writer resolves relative names against the process's working directory,
which threads share; entries are therefore given absolute names inside the target directory,
whose own path is resolved (symlink-free), so SECURE_SYMLINKS checks every component without
anyone calling chdir. (SECURE_NOABSOLUTEPATHS cannot be set for that reason; the archive's own
names are refused here when absolute.)
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import threading
from ctypes import byref, c_char_p, c_longlong, c_size_t, c_void_p
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from reconciler.adapters.layerstore import archive_ffi as la
from reconciler.adapters.layerstore.pipeline import Pipeline
from reconciler.core.errors import StorageError, UnsafeArchive

MAX_NAME = 3000  # libarchive chdirs for names longer than PATH_MAX; never let it
EXTRACT_FLAGS = (la.EXTRACT_OWNER | la.EXTRACT_PERM | la.EXTRACT_TIME | la.EXTRACT_XATTR
                 | la.SECURE_SYMLINKS | la.SECURE_NODOTDOT | la.EXTRACT_SPARSE)
WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# the one warning that does not fail a layer (libarchive's wording since 3.0)
_XATTRS_UNSUPPORTED = b"Cannot restore extended attributes on this file system"


def _tolerable(disk) -> bool:
    return (la.error_string(disk) or b"").startswith(_XATTRS_UNSUPPORTED)


# --------------------------------------------------------------------------- entry policy

def _shown(name: bytes) -> str:
    return name.decode(errors="replace")


def _clean_name(raw: bytes, what: str) -> bytes:
    """Normalize an archive path to 'a/b/c' (b'' for the root); refuse absolute and '..'."""
    if raw.startswith(b"/"):
        raise UnsafeArchive(f"layer entry {what} {_shown(raw)!r} is an absolute path")
    parts = [p for p in raw.split(b"/") if p not in (b"", b".")]
    if b".." in parts:
        raise UnsafeArchive(f"layer entry {what} {_shown(raw)!r} contains '..'")
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
                raise UnsafeArchive(f"layer entry {what} {_shown(name)!r} passes "
                                    f"through the symlink {_shown(name[:idx])!r}")
            idx = name.find(b"/", idx + 1)

    def _note(self, name: bytes, filetype: int) -> None:
        if filetype == la.AE_IFLNK:
            self.symlinks.add(name)
        else:
            self.symlinks.discard(name)
        if filetype == la.AE_IFDIR:
            self.dirs.add(name)
        self.seen.add(name)

    def run(self, pipe: Pipeline) -> None:
        self.disk = la.write_disk_new()
        la.write_disk_set_options(self.disk, EXTRACT_FLAGS)
        entry = la.entry_new()
        try:
            tar = pipe.tar
            while True:
                r = la.next_header2(tar, entry)
                if r == la.EOF:
                    break
                if r < la.WARN:
                    raise pipe.failure(tar, "reading the layer's tar stream")
                self._entry(pipe, tar, entry)
            # directory modes and times, deferred by libarchive to the end
            self._check(la.write_close(self.disk), pipe, "finishing the layer")
        finally:
            la.entry_free(entry)
            la.write_free(self.disk)
            self.disk = None
        for name in self.opaque:
            self._mark_opaque(name)

    def _entry(self, pipe: Pipeline, tar, entry) -> None:
        name = _clean_name(la.entry_pathname(entry) or b"", "name")
        self._check_parents(name, "name")
        base = name.rsplit(b"/", 1)[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(pipe, name, base, entry)
            return
        filetype = la.entry_filetype(entry) & la.AE_IFMT
        if not name and filetype != la.AE_IFDIR:
            raise UnsafeArchive("layer entry for the layer's root directory is not a directory")
        link = la.entry_hardlink(entry)
        if link:
            target = _clean_name(link, "hardlink target")
            self._check_parents(target, "hardlink target")
            if target not in self.seen or target in self.dirs:
                raise UnsafeArchive(f"layer entry {_shown(name)!r} is a hardlink to "
                                    f"{_shown(target)!r}, which is not a file of this layer")
            if target in self.symlinks:
                filetype = la.AE_IFLNK  # link(2) on a symlink makes a second symlink, not a file
            la.entry_copy_hardlink(entry, self._abs(target))
        if la.xattr_reset(entry):
            self._drop_overlay_xattrs(entry)
        la.entry_copy_pathname(entry, self._abs(name))
        self._write(pipe, tar, entry, name)
        self._note(name, filetype)

    def _write(self, pipe: Pipeline, tar, entry, name: bytes) -> None:
        what = f"writing {_shown(name)!r}"
        r = la.write_header(self.disk, entry)
        if r < la.WARN:
            self._refuse_or_fail(pipe, name)
        self._check(r, pipe, what)
        ptr, size, off = c_void_p(), c_size_t(), c_longlong()
        while True:
            r = la.read_data_block(tar, byref(ptr), byref(size), byref(off))
            if r == la.EOF:
                break
            if r < la.WARN:
                raise pipe.failure(tar, "reading the layer's tar stream")
            if la.write_data_block(self.disk, ptr, size, off) != la.OK:
                raise pipe.failure(self.disk, what)  # a failed or short write: never tolerated
        self._check(la.write_finish_entry(self.disk), pipe, what)

    def _check(self, r: int, pipe: Pipeline | None, what: str) -> None:
        if r == la.OK or r == la.WARN and _tolerable(self.disk):
            return
        if pipe is not None and pipe.error is not None:
            raise pipe.error
        raise StorageError(f"{what}: {la.describe(self.disk)}")

    def _refuse_or_fail(self, pipe: Pipeline | None, name: bytes) -> None:
        msg = (la.error_string(self.disk) or b"").decode("utf-8", "replace")
        if "symlink" in msg.lower() or ".." in msg or "absolute" in msg.lower():
            raise UnsafeArchive(f"layer entry {_shown(name)!r} refused by libarchive: {msg}")
        self._check(la.FATAL, pipe, f"writing {_shown(name)!r}")

    def _whiteout(self, pipe: Pipeline, name: bytes, base: bytes, entry) -> None:
        parent = name[: len(name) - len(base)].rstrip(b"/")
        if base == OPAQUE_MARKER:
            self.opaque.append(parent)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in (b"", b".", b".."):
            raise UnsafeArchive(f"layer entry {_shown(name)!r} is a malformed whiteout")
        target = parent + b"/" + hidden if parent else hidden
        what = f"writing the whiteout {_shown(target)!r}"
        wh = la.entry_new()
        try:
            la.entry_copy_pathname(wh, self._abs(target))
            la.entry_set_filetype(wh, la.AE_IFCHR)
            la.entry_set_perm(wh, 0)
            la.entry_set_rdev(wh, 0)
            la.entry_set_uid(wh, 0)
            la.entry_set_gid(wh, 0)
            la.entry_set_mtime(wh, la.entry_mtime(entry), 0)
            r = la.write_header(self.disk, wh)
            if r < la.WARN:
                self._refuse_or_fail(pipe, target)
            self._check(r, pipe, what)
            self._check(la.write_finish_entry(self.disk), pipe, what)
        finally:
            la.entry_free(wh)
        self._note(target, la.AE_IFCHR)

    @staticmethod
    def _drop_overlay_xattrs(entry) -> None:
        """A layer must not carry overlayfs' own trusted.overlay.* attributes (opaque, redirect...):
        those would change how the stack is merged. Others (capabilities, ACLs) are kept."""
        keep, dropped = [], False
        name, value, size = c_char_p(), c_void_p(), c_size_t()
        while la.xattr_next(entry, byref(name), byref(value), byref(size)) == la.OK:
            if name.value and name.value.startswith(b"trusted.overlay."):
                dropped = True
                continue
            keep.append((name.value, ctypes.string_at(value, size.value) if value.value else b""))
        if dropped:
            la.xattr_clear(entry)
            for k, v in keep:
                la.xattr_add(entry, k, v, len(v))

    def _mark_opaque(self, name: bytes) -> None:
        self._check_parents(name + b"/", "opaque directory")
        if name in self.symlinks:
            raise UnsafeArchive(f"opaque marker inside the symlink {_shown(name)!r}")
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
                    raise UnsafeArchive(f"opaque marker in {_shown(name)!r}: "
                                        f"{_shown(done)!r} is {kind}") from None
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd


@dataclass(frozen=True)
class Extracted:
    diff_id: str            # "sha256:…" of the uncompressed tar
    size: int               # bytes of the uncompressed tar
    compressed: int         # bytes read from the stream


def extract_stream(stream, target: Path, progress: Callable[[int], None] | None = None,
                   cancel: threading.Event | None = None, max_size: int | None = None) -> Extracted:
    """Extract a layer blob (a read(n) file object, read to its end) into the existing,
    symlink-free directory `target`, stopping at `max_size` uncompressed bytes. Raises
    UnsafeArchive, StorageError (pipeline.LayerTooLarge), pipeline.Cancelled, or what the stream
    raised (e.g. the registry client's IntegrityError)."""
    pipe = Pipeline(stream, progress, cancel, max_size)
    try:
        pipe.open()
        _Extractor(Path(target)).run(pipe)
        pipe.drain()
    finally:
        pipe.close()
    return Extracted("sha256:" + pipe.hasher.hexdigest(), pipe.size, pipe.compressed)
