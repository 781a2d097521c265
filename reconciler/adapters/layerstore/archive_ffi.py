"""The libarchive calls the extractor makes, bound with ctypes on libarchive-c's library handle.

A handle of our own: libarchive-c's function objects carry errcheck wrappers that raise on
ARCHIVE_WARN and hide the return codes, which the extractor must see (a failed write(2) is
reported as a warning). Used as `from reconciler.adapters.layerstore import archive_ffi as la`.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_int, c_longlong, c_size_t, c_void_p

import libarchive.ffi as ffi

READ_CALLBACK, NO_OPEN_CB, NO_CLOSE_CB = ffi.READ_CALLBACK, ffi.NO_OPEN_CB, ffi.NO_CLOSE_CB

OK, EOF, WARN, FAILED, FATAL = 0, 1, -20, -25, -30

EXTRACT_OWNER, EXTRACT_PERM, EXTRACT_TIME, EXTRACT_XATTR = 0x1, 0x2, 0x4, 0x80
SECURE_SYMLINKS, SECURE_NODOTDOT, EXTRACT_SPARSE = 0x100, 0x200, 0x1000

AE_IFMT, AE_IFREG, AE_IFLNK, AE_IFCHR, AE_IFDIR = 0o170000, 0o100000, 0o120000, 0o020000, 0o040000

_lib = ctypes.CDLL(ffi.libarchive_path)


def _bind(name, argtypes, restype):
    f = getattr(_lib, "archive_" + name)
    f.argtypes, f.restype = argtypes, restype
    return f


read_new = _bind("read_new", [], c_void_p)
read_free = _bind("read_free", [c_void_p], c_int)
support_format_raw = _bind("read_support_format_raw", [c_void_p], c_int)
support_format_tar = _bind("read_support_format_tar", [c_void_p], c_int)
support_filter_gzip = _bind("read_support_filter_gzip", [c_void_p], c_int)
support_filter_zstd = _bind("read_support_filter_zstd", [c_void_p], c_int)
support_filter_none = _bind("read_support_filter_none", [c_void_p], c_int)
read_open = _bind("read_open", [c_void_p, c_void_p, ffi.OPEN_CALLBACK, ffi.READ_CALLBACK,
                                ffi.CLOSE_CALLBACK], c_int)
next_header2 = _bind("read_next_header2", [c_void_p, c_void_p], c_int)
read_data_block = _bind("read_data_block", [c_void_p, POINTER(c_void_p), POINTER(c_size_t),
                                            POINTER(c_longlong)], c_int)
error_string = _bind("error_string", [c_void_p], c_char_p)
errno_of = _bind("errno", [c_void_p], c_int)
write_disk_new = _bind("write_disk_new", [], c_void_p)
write_disk_set_options = _bind("write_disk_set_options", [c_void_p, c_int], c_int)
write_header = _bind("write_header", [c_void_p, c_void_p], c_int)
write_data_block = _bind("write_data_block", [c_void_p, c_void_p, c_size_t, c_longlong], c_longlong)
write_finish_entry = _bind("write_finish_entry", [c_void_p], c_int)
write_close = _bind("write_close", [c_void_p], c_int)
write_free = _bind("write_free", [c_void_p], c_int)
entry_new = _bind("entry_new", [], c_void_p)
entry_free = _bind("entry_free", [c_void_p], None)
entry_pathname = _bind("entry_pathname", [c_void_p], c_char_p)
entry_hardlink = _bind("entry_hardlink", [c_void_p], c_char_p)
entry_filetype = _bind("entry_filetype", [c_void_p], c_int)
entry_mtime = _bind("entry_mtime", [c_void_p], ctypes.c_int64)
entry_copy_pathname = _bind("entry_copy_pathname", [c_void_p, c_char_p], None)
entry_copy_hardlink = _bind("entry_copy_hardlink", [c_void_p, c_char_p], None)
entry_set_filetype = _bind("entry_set_filetype", [c_void_p, ctypes.c_uint], None)
entry_set_perm = _bind("entry_set_perm", [c_void_p, c_int], None)
entry_set_rdev = _bind("entry_set_rdev", [c_void_p, ctypes.c_uint64], None)
entry_set_mtime = _bind("entry_set_mtime", [c_void_p, ctypes.c_int64, ctypes.c_long], None)
entry_set_uid = _bind("entry_set_uid", [c_void_p, ctypes.c_int64], None)
entry_set_gid = _bind("entry_set_gid", [c_void_p, ctypes.c_int64], None)
xattr_reset = _bind("entry_xattr_reset", [c_void_p], c_int)
xattr_next = _bind("entry_xattr_next", [c_void_p, POINTER(c_char_p), POINTER(c_void_p),
                                        POINTER(c_size_t)], c_int)
xattr_clear = _bind("entry_xattr_clear", [c_void_p], None)
xattr_add = _bind("entry_xattr_add_entry", [c_void_p, c_char_p, c_void_p, c_size_t], None)


def describe(archive) -> str:
    """libarchive's last error on `archive`, with the errno's text when it names one."""
    msg = error_string(archive)
    text = msg.decode("utf-8", "replace") if msg else "unknown error"
    code = errno_of(archive)
    if code > 0:
        reason = os.strerror(code)
        if reason not in text:
            text = f"{text}: {reason}"
    return text
