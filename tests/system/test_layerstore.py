"""Layer extraction: formats, what is kept, whiteouts in overlay form, and malicious layers.

Layers are crafted here with Python's tarfile; compressed with gzip and the zstd CLI.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from reconciler.adapters import statefiles
from reconciler.adapters.layerstore import LayerStore
from reconciler.core.errors import IntegrityError, StorageError, UnsafeArchive
from reconciler.core.layout import Layout

MTIME = 1_600_000_000


def info(name, kind=tarfile.REGTYPE, mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = kind, mode, MTIME
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def make_tar(*members) -> bytes:
    """members: TarInfo or (TarInfo, data)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            ti, data = (m if isinstance(m, tuple) else (m, None))
            if data is not None:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    return buf.getvalue()


def zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


def diff_id(tar: bytes) -> str:
    return "sha256:" + hashlib.sha256(tar).hexdigest()


@pytest.fixture
def store(root):
    return LayerStore(Layout(root), statefiles)


def extract(store, tar: bytes, blob: bytes | None = None, parent=None):
    blob = tar if blob is None else blob
    did = diff_id(tar)
    chain = did if parent is None else "sha256:" + hashlib.sha256(f"{parent} {did}".encode()).hexdigest()
    rec = store.extract(io.BytesIO(blob), chain_id=chain, parent=parent, diff_id=did,
                        compressed_digest="sha256:" + hashlib.sha256(blob).hexdigest(),
                        compressed_size=len(blob))
    return rec, Path(store.layout.layer_dir(chain), "diff")


def assert_nothing_published(store):
    layers, overlay, tmp = (Path(d) for d in (store.layout.layers_dir, store.layout.overlay_dir,
                                              store.layout.tmp_dir))
    assert not list(layers.glob("*.json")) if layers.exists() else True
    if overlay.exists():
        assert [p.name for p in overlay.iterdir() if p.name != "l"] == []
    if tmp.exists():
        assert list(tmp.iterdir()) == []


# vfs_cap_data v2: effective, permitted = CAP_NET_BIND_SERVICE
CAP = "\x01\x00\x00\x02\x00\x04\x00\x00" + "\x00" * 12
CONTENT = make_tar(
    info("bin", tarfile.DIRTYPE, 0o755),
    (info("bin/tool", mode=0o4755, uid=1000, gid=2000), b"#!/bin/sh\necho hi\n"),
    info("bin/link-to-tool", tarfile.LNKTYPE, linkname="bin/tool"),
    info("bin/sym", tarfile.SYMTYPE, 0o777, linkname="/etc/passwd"),
    info("dev", tarfile.DIRTYPE, 0o755),
    info("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
    info("dev/loop9", tarfile.BLKTYPE, 0o660, devmajor=7, devminor=9),
    info("dev/fifo", tarfile.FIFOTYPE, 0o600),
    info("secret", tarfile.DIRTYPE, 0o700, uid=33, gid=33),
    (info("secret/cap", mode=0o755, pax_headers={"SCHILY.xattr.user.note": "hello",
                                                  "SCHILY.xattr.security.capability": CAP}), b"x"),
)


@pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
def test_formats_and_metadata_are_kept(store, compression):
    blob = {"plain": lambda t: t, "gzip": gzip.compress, "zstd": zstd}[compression](CONTENT)
    rec, diff = extract(store, CONTENT, blob)
    assert rec.diff_digest == diff_id(CONTENT) and rec.size == len(CONTENT)
    st = os.lstat(diff / "bin/tool")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (1000, 2000)
    assert st.st_mtime == MTIME
    assert (diff / "bin/tool").read_text() == "#!/bin/sh\necho hi\n"
    assert os.lstat(diff / "bin/link-to-tool").st_ino == st.st_ino and st.st_nlink == 2
    assert os.readlink(diff / "bin/sym") == "/etc/passwd"
    null = os.lstat(diff / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    loop = os.lstat(diff / "dev/loop9")
    assert stat.S_ISBLK(loop.st_mode) and (os.major(loop.st_rdev), os.minor(loop.st_rdev)) == (7, 9)
    assert stat.S_ISFIFO(os.lstat(diff / "dev/fifo").st_mode)
    sec = os.lstat(diff / "secret")
    assert stat.S_IMODE(sec.st_mode) == 0o700 and sec.st_uid == 33
    assert os.getxattr(diff / "secret/cap", "user.note") == b"hello"
    assert os.getxattr(diff / "secret/cap", "security.capability") == CAP.encode()
    # the seed's bookkeeping: link, short link, record
    layer_dir = diff.parent
    short = (layer_dir / "link").read_text()
    assert len(short) == 26 and short.isalnum() and short.upper() == short
    assert os.readlink(f"{store.layout.short_links_dir}/{short}") == f"../{layer_dir.name}/diff"
    assert not (layer_dir / "lower").exists()
    assert store.lowerdirs(rec.id) == [f"l/{short}"]
    saved = statefiles.read_json(store.layout.layer_record(rec.id))
    assert saved["diff-digest"] == rec.diff_digest and saved["compressed-size"] == len(blob)
    assert os.listdir(store.layout.tmp_dir) == []


def test_whiteouts_become_overlay_form_and_parents_chain(store):
    base = make_tar(info("etc", tarfile.DIRTYPE, 0o755), (info("etc/a"), b"a"), (info("etc/b"), b"b"),
                    info("opt", tarfile.DIRTYPE, 0o755), (info("opt/x"), b"x"),
                    info("var", tarfile.DIRTYPE, 0o755), (info("var/old"), b"o"))
    brec, _ = extract(store, base)
    upper = make_tar(info("etc", tarfile.DIRTYPE, 0o755), info("etc/.wh.a"),
                     info(".wh.opt"),
                     info("var", tarfile.DIRTYPE, 0o751), info("var/.wh..wh..opq"), (info("var/new"), b"n"))
    urec, diff = extract(store, upper, gzip.compress(upper), parent=brec.id)
    for wh in ("etc/a", "opt"):
        st = os.lstat(diff / wh)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, wh
    assert not (diff / "etc/.wh.a").exists() and not (diff / ".wh.opt").exists()
    assert os.getxattr(diff / "var", "trusted.overlay.opaque") == b"y"
    assert stat.S_IMODE(os.lstat(diff / "var").st_mode) == 0o751
    assert not (diff / "var/.wh..wh..opq").exists() and (diff / "var/new").read_text() == "n"
    assert (diff / "etc/b").exists() is False  # only what the layer has
    # lower: the parents' short names, nearest first
    base_short = store.short_name(brec.id)
    assert (diff.parent / "lower").read_text() == f"l/{base_short}"
    assert store.lowerdirs(urec.id) == [f"l/{store.short_name(urec.id)}", f"l/{base_short}"]
    # and overlayfs reads it that way: mount the two and look
    merged = Path(store.layout.root, "merged")
    merged.mkdir()
    work = Path(store.layout.root, "work")
    work.mkdir()
    lower = ":".join(f"{store.layout.overlay_dir}/{p}" for p in store.lowerdirs(urec.id))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "etc")) == ["b"]
        assert not (merged / "opt").exists()
        assert os.listdir(merged / "var") == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_overlay_xattrs_from_the_archive_are_dropped(store):
    tar = make_tar(info("d", tarfile.DIRTYPE, 0o755,
                        pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                     "SCHILY.xattr.user.keep": "1"}))
    _, diff = extract(store, tar)
    assert os.getxattr(diff / "d", "user.keep") == b"1"
    with pytest.raises(OSError):
        os.getxattr(diff / "d", "trusted.overlay.redirect")


MALICIOUS = {
    "absolute path": make_tar((info("/etc/evil"), b"x")),
    "dot-dot": make_tar(info("a", tarfile.DIRTYPE), (info("a/../../evil"), b"x")),
    "symlink escape": make_tar(info("esc", tarfile.SYMTYPE, 0o777, linkname="/tmp"),
                               (info("esc/evil"), b"x")),
    "relative symlink escape": make_tar(info("up", tarfile.SYMTYPE, 0o777, linkname="../../../.."),
                                        (info("up/tmp/evil"), b"x")),
    "hardlink outside": make_tar(info("h", tarfile.LNKTYPE, linkname="../../../etc/passwd")),
    "hardlink absolute": make_tar(info("h", tarfile.LNKTYPE, linkname="/etc/passwd")),
    "hardlink through symlink": make_tar(info("esc", tarfile.SYMTYPE, 0o777, linkname="/etc"),
                                         info("h", tarfile.LNKTYPE, linkname="esc/passwd")),
    "whiteout through symlink": make_tar(info("esc", tarfile.SYMTYPE, 0o777, linkname="/tmp"),
                                         info("esc/.wh.x")),
    "opaque through symlink": make_tar(info("esc", tarfile.SYMTYPE, 0o777, linkname="/tmp"),
                                       info("esc/.wh..wh..opq")),
    "root replaced by a symlink": make_tar(info(".", tarfile.SYMTYPE, 0o777, linkname="/")),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_layers_are_refused_and_nothing_published(store, tmp_path, case):
    tar = MALICIOUS[case]
    with pytest.raises(UnsafeArchive):
        extract(store, tar, gzip.compress(tar))
    assert_nothing_published(store)
    for outside in ("/tmp/evil", "/evil", "/etc/evil", "/tmp/x", "/tmp/.wh..wh..opq"):
        assert not os.path.lexists(outside)
    with pytest.raises(OSError):
        os.getxattr("/tmp", "trusted.overlay.opaque")
    assert os.stat("/etc/passwd").st_nlink == 1  # no hardlink to it was made


def _tree_snapshot(top):
    """Every entry under top (itself included) with its type and xattrs."""
    def one(path):
        return os.lstat(path).st_mode, sorted(os.listxattr(path, follow_symlinks=False))
    snap = {".": one(top)}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            snap[os.path.relpath(p, top)] = one(p)
    return snap


# A hardlink to a symlink of the layer is itself a symlink; entries below it must not reach
# the symlink's target (here a host directory standing for another layer's diff/).
THROUGH_HARDLINKED_SYMLINK = {
    "opaque below it": ["h/x/.wh..wh..opq"],
    "opaque on an existing dir below it": ["h/usr/.wh..wh..opq"],
    "opaque two levels below it": ["h/x/y/.wh..wh..opq"],
    "file below it": ["h/x/file"],
    "whiteout below it": ["h/.wh.usr"],
    "hardlink of the hardlink": ["h2", "h2/x/.wh..wh..opq"],
}


@pytest.mark.parametrize("case", sorted(THROUGH_HARDLINKED_SYMLINK))
def test_entries_through_a_hardlinked_symlink_are_refused(store, tmp_path, case):
    outside = tmp_path / "outside"
    (outside / "usr").mkdir(parents=True)
    before = _tree_snapshot(outside)
    members = [info("l", tarfile.SYMTYPE, 0o777, linkname=str(outside)),
               info("h", tarfile.LNKTYPE, linkname="l")]
    for name in THROUGH_HARDLINKED_SYMLINK[case]:
        if name == "h2":
            members.append(info("h2", tarfile.LNKTYPE, linkname="h"))
        elif name.endswith("/file"):
            members.append((info(name), b"x"))
        else:
            members.append(info(name))
    tar = make_tar(*members)
    with pytest.raises(UnsafeArchive):
        extract(store, tar, gzip.compress(tar))
    assert_nothing_published(store)
    assert _tree_snapshot(outside) == before


def test_hardlink_to_a_symlink_is_kept_as_a_symlink(store):
    tar = make_tar(info("l", tarfile.SYMTYPE, 0o777, linkname="/usr/lib"),
                   info("h", tarfile.LNKTYPE, linkname="l"),
                   info("d", tarfile.DIRTYPE, 0o755), info("d/.wh..wh..opq"))
    _, diff = extract(store, tar)
    assert os.readlink(diff / "h") == "/usr/lib"
    assert os.getxattr(diff / "d", "trusted.overlay.opaque") == b"y"


def test_opaque_marking_never_follows_a_symlink_on_its_own(store, tmp_path, monkeypatch):
    """Defence in depth: with the entry bookkeeping switched off, marking a directory opaque
    still refuses to walk through a symlink of the layer."""
    from reconciler.adapters.layerstore import extract as extraction
    monkeypatch.setattr(extraction._Extractor, "_check_parents", lambda *a: None)
    outside = tmp_path / "outside"
    (outside / "usr").mkdir(parents=True)
    before = _tree_snapshot(outside)
    for opaque in ("esc/x/.wh..wh..opq", "esc/usr/.wh..wh..opq"):
        tar = make_tar(info("esc", tarfile.SYMTYPE, 0o777, linkname=str(outside)), info(opaque))
        with pytest.raises(UnsafeArchive, match="symlink"):
            extract(store, tar)
        assert_nothing_published(store)
        assert _tree_snapshot(outside) == before


def test_diff_id_mismatch_publishes_nothing(store):
    tar = make_tar((info("f"), b"content"))
    with pytest.raises(IntegrityError, match="diff_id"):
        store.extract(io.BytesIO(gzip.compress(tar)), chain_id=diff_id(b"other"), parent=None,
                      diff_id=diff_id(b"other"))
    assert_nothing_published(store)


def test_truncated_blob_publishes_nothing(store):
    tar = make_tar((info("f"), os.urandom(300_000)))
    blob = gzip.compress(tar)
    with pytest.raises(Exception):
        store.extract(io.BytesIO(blob[: len(blob) // 2]), chain_id=diff_id(tar), parent=None,
                      diff_id=diff_id(tar))
    assert_nothing_published(store)


def test_stale_staging_is_cleaned_but_live_staging_is_not(store):
    # a staging dir left by a killed pull (no lock held) and one still in use (locked)
    stale = Path(store.layout.tmp_dir, "layer-1-dead")
    (stale / "diff/usr").mkdir(parents=True)
    live_path, live_fd = store._new_staging()
    try:
        assert store.clean_stale() == 1
        assert not stale.exists() and os.path.exists(live_path)
    finally:
        store._drop(live_path, live_fd)


def test_concurrent_stages_do_not_interfere(store):
    tars = [make_tar(info(f"d{i}", tarfile.DIRTYPE), (info(f"d{i}/f"), os.urandom(200_000))) for i in range(4)]
    results, errors = {}, []

    def work(i):
        try:
            results[i] = store.stage(io.BytesIO(gzip.compress(tars[i])), diff_id=diff_id(tars[i]))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, staged in results.items():
        rec = store.publish(staged, chain_id=diff_id(tars[i]), parent=None)
        diff = f"{store.layout.layer_dir(rec.id)}/diff"
        assert os.listdir(diff) == [f"d{i}"]


def test_remove_deletes_record_link_and_tree(store):
    rec, diff = extract(store, make_tar((info("f"), b"1")))
    short = store.short_name(rec.id)
    store.remove(rec.id)
    assert not store.has(rec.id) and not diff.parent.exists()
    assert not os.path.lexists(f"{store.layout.short_links_dir}/{short}")
    assert os.listdir(store.layout.tmp_dir) == []


@pytest.mark.parametrize("case", ["symlink escape", "relative symlink escape", "whiteout through symlink"])
def test_libarchive_guards_symlink_escapes_on_its_own(store, monkeypatch, case):
    """Defence in depth: with our own path checks switched off, libarchive's
    SECURE_SYMLINKS still refuses to write through a symlink of the layer."""
    from reconciler.adapters.layerstore import extract as extraction
    monkeypatch.setattr(extraction._Extractor, "_check_parents", lambda *a: None)
    tar = MALICIOUS[case]
    with pytest.raises(UnsafeArchive, match="libarchive"):
        extract(store, tar)
    assert_nothing_published(store)
    assert not os.path.lexists("/tmp/evil") and not os.path.lexists("/tmp/x")


def test_directory_replaced_by_a_symlink_does_not_redirect_deferred_fixups(store, tmp_path):
    """libarchive applies directory modes and times at the end; a dir the archive later replaced
    by a symlink must not carry those to the symlink's target."""
    target = tmp_path / "outside"
    target.mkdir(mode=0o755)
    os.utime(target, (MTIME + 5, MTIME + 5))
    tar = make_tar(info("a", tarfile.DIRTYPE, 0o700), info("a", tarfile.SYMTYPE, 0o777, linkname=str(target)))
    _, diff = extract(store, tar)
    assert os.readlink(diff / "a") == str(target)
    st = os.stat(target)
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_mtime == MTIME + 5


def test_max_layer_size_stops_extraction_and_keeps_nothing(root):
    store = LayerStore(Layout(root), statefiles, max_layer_size=64 << 10, config_source="conf.json")
    small = make_tar((info("f"), b"x" * 1000))
    extract(store, small)
    big = make_tar((info("big"), b"\1" * (1 << 20)))
    with pytest.raises(StorageError, match=r"exceeds max-layer-size \(65536 bytes, set in conf.json\)"):
        extract(store, big, gzip.compress(big))
    assert [p.name for p in Path(store.layout.tmp_dir).iterdir()] == []
    assert len(store.list()) == 1


def test_a_failed_write_fails_the_layer_instead_of_leaving_a_hole(store, tmp_path):
    """RLIMIT_FSIZE makes write(2) fail past 1 MiB (EFBIG, after a short write) in this process
    only: the layer fails at the first failed write, with its cause, and nothing is published.
    (The full-disk tests in test_extract_faults.py cover a failure libarchive itself would hide.)"""
    import resource
    import signal
    tar = make_tar((info("big"), os.urandom(3 << 20)))
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, old_limit[1]))
    try:
        with pytest.raises(StorageError, match="File too large"):
            extract(store, tar, gzip.compress(tar))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert_nothing_published(store)
