"""A full disk during a pull, data lost at write-back, layer bombs and max-layer-size, through
the real CLI.

The engine root is a small tmpfs (tests.fixtures.images.small_filesystem), so a write fails with
ENOSPC at a chosen size, deterministically; the root is then grown in place and pulled again.
For write-back errors, the root is an ext4 on a loop device whose image sits on a tmpfs too
small for it (tests.fixtures.images.ext4_on_small_backing).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from tests.fixtures.images import (assert_nothing_registered, ext4_on_small_backing, images_json,
                                   layer_dirs, layer_records, pattern_bytes, push_blobs, push_image,
                                   resize_filesystem, small_filesystem, streamed_layer, used_bytes)
from tests.fixtures.registry import File, tar_from_dict

MiB = 1 << 20


@pytest.fixture
def root(tmp_path):
    """This module's --root: a 16 MiB tmpfs (overriding tests.fixtures.cli's), unmounted after."""
    with small_filesystem(tmp_path / "root", "16m") as r:
        yield r


def assert_clean_failure(proc, *needles):
    """Exit 1, stderr a `docker-mini: error: ...` (and its hint), no traceback."""
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("docker-mini: error: ") and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def assert_check_clean(dm):
    proc = dm("system", "check", check=False)
    assert proc.returncode == 0 and "no problems found" in proc.stdout, (proc.stdout, proc.stderr)


def _transient_full_disk(data: bytes) -> bytes:
    """The disk is full only while `victim` is written: a filler taking most of it comes first
    and is replaced by an empty file afterwards, so everything after the victim has room (the
    case that published a corrupt layer: the holes left by failed writes were sealed)."""
    import tarfile, io
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in (("filler", b"\x02" * (11 * MiB)), ("big", data), ("filler", b""),
                              ("after", b"written after the big file")):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(content), 1_700_000_000
            tar.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


FULL_DISKS = {
    # a file bigger than the whole 16 MiB root
    "file bigger than the disk": lambda data: tar_from_dict({"big": File(data),
                                                             "after": "written after the big file"}),
    "disk full for a moment": _transient_full_disk,
}


@pytest.mark.parametrize("case", sorted(FULL_DISKS))
def test_a_full_disk_fails_the_pull_publishes_nothing_and_the_next_pull_is_byte_correct(dm, registry, case):
    data = pattern_bytes(8 * MiB if case == "disk full for a moment" else 24 * MiB)
    repo = "faults/enospc-" + case.replace(" ", "-")
    push_image(registry, repo, "latest", [FULL_DISKS[case](data)])
    ref = f"{registry.addr}/{repo}:latest"

    proc = dm("pull", ref, check=False)
    assert_clean_failure(proc, "No space left on device")
    assert_nothing_registered(dm.root)
    assert_check_clean(dm)

    resize_filesystem(dm.root, "64m")
    dm("pull", ref)
    [layer_id] = layer_records(dm.root)
    diff = dm.root / "overlay" / layer_id / "diff"
    assert hashlib.sha256((diff / "big").read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert (diff / "after").read_text() == "written after the big file"
    assert_check_clean(dm)


def test_a_bomb_that_fills_the_disk_stops_and_removes_its_partial_data(dm, registry):
    """64 MiB of a repeated non-zero byte in a ~64 KiB blob (zeros would be written sparse)."""
    baseline = used_bytes(dm.root)
    blob, diff_id = streamed_layer({"bomb": (64 * MiB, b"\x01")})
    assert len(blob) < MiB
    push_blobs(registry, "faults/bomb-fills", "latest", [(blob, diff_id)])
    proc = dm("pull", f"{registry.addr}/faults/bomb-fills:latest", check=False)
    assert_clean_failure(proc, "No space left on device")
    assert_nothing_registered(dm.root)
    assert used_bytes(dm.root) < baseline + MiB
    assert_check_clean(dm)


def test_a_zero_bomb_is_accepted_as_docker_does_and_costs_no_disk(dm, registry):
    """256 MiB of zeros (a ~256 KiB blob) on a 16 MiB disk: written sparse, pulled."""
    blob, diff_id = streamed_layer({"zeros": (256 * MiB, b"\0")})
    push_blobs(registry, "faults/zero-bomb", "latest", [(blob, diff_id)])
    dm("pull", f"{registry.addr}/faults/zero-bomb:latest")
    [layer_id] = layer_records(dm.root)
    zeros = dm.root / "overlay" / layer_id / "diff/zeros"
    st = zeros.stat()
    assert st.st_size == 256 * MiB and st.st_blocks * 512 < MiB
    assert_check_clean(dm)


def _with_limit(dm, limit):
    config = json.loads(dm.config_file.read_text())
    dm.config_file.write_text(json.dumps({**config, "max-layer-size": limit}))


def test_max_layer_size_refuses_a_bigger_layer_and_keeps_nothing(dm, registry):
    _with_limit(dm, "1m")
    blob, diff_id = streamed_layer({"zeros": (8 * MiB, b"\0")})
    push_blobs(registry, "faults/over-limit", "latest", [(blob, diff_id)])
    proc = dm("pull", f"{registry.addr}/faults/over-limit:latest", check=False)
    assert_clean_failure(proc, "max-layer-size", str(dm.config_file))
    assert_nothing_registered(dm.root)
    assert_check_clean(dm)
    # a layer within the limit passes
    push_image(registry, "faults/under-limit", "latest", [tar_from_dict({"small": File(b"x" * 4096)})])
    dm("pull", f"{registry.addr}/faults/under-limit:latest")
    assert len(images_json(dm.root)) == 1


@pytest.mark.parametrize("value, needle", [
    ("lots", "'lots' is not a size"),
    ("-1m", "is not a size"),
    (12.5, "must be"),
    (True, "must be a size"),
])
def test_a_bad_max_layer_size_names_the_file_and_the_key(dm, value, needle):
    _with_limit(dm, value)
    proc = dm("images", check=False)
    assert_clean_failure(proc, str(dm.config_file), "max-layer-size", needle)


def test_a_full_disk_when_the_record_is_written_takes_the_layer_back(dm, registry):
    """The layer is extracted and renamed into overlay/, then its record cannot be written
    (overlay-layers/ is a full 4 KiB filesystem): the layer dir and its short link go too."""
    records = dm.root / "overlay-layers"
    push_image(registry, "faults/record-enospc", "latest", [tar_from_dict({"f": "content"})])
    ref = f"{registry.addr}/faults/record-enospc:latest"
    with small_filesystem(records, "4k"):
        (records / "filler").write_bytes(b"x" * 4096)
        proc = dm("pull", ref, check=False)
        assert_clean_failure(proc, "No space left on device")
        assert images_json(dm.root) == {} and layer_records(dm.root) == [] and layer_dirs(dm.root) == []
        assert list((dm.root / "overlay/l").iterdir()) == []
        assert list((dm.root / "tmp").iterdir()) == []
        assert_check_clean(dm)
        (records / "filler").unlink()
        dm("pull", ref)
        [layer_id] = layer_records(dm.root)
        assert (dm.root / "overlay" / layer_id / "diff/f").read_text() == "content"
        assert_check_clean(dm)


def test_data_lost_at_write_back_fails_the_pull(registry, tmp_path, config_file):
    """Every write(2) succeeds, and the disk under the ext4 fails when the kernel writes the
    data back (its loop device's image is on a full 20 MiB tmpfs): the error reaches nobody's
    write or close, and before the flush at the end of extraction a layer with the data lost
    was published. The pull fails instead; once the disk is repaired the next pull is correct."""
    data = pattern_bytes(40 * MiB)
    push_image(registry, "faults/write-back", "latest", [tar_from_dict({"big": File(data)})])
    ref = f"{registry.addr}/faults/write-back:latest"
    with ext4_on_small_backing(tmp_path / "disk") as disk:
        root = disk.path / "root"
        root.mkdir(mode=0o700)
        cli = [sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(config_file)]
        proc = subprocess.run([*cli, "pull", ref], capture_output=True, text=True, timeout=120)
        assert_clean_failure(proc)
        # the write-back error, or the journal it aborted (ext4 then refuses writes)
        assert "Input/output error" in proc.stderr or "Read-only file system" in proc.stderr, proc.stderr
        assert images_json(root) == {} and layer_records(root) == [] and layer_dirs(root) == []

        disk.repair("256m")
        again = subprocess.run([*cli, "pull", ref], capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, (again.stdout, again.stderr)
        [layer_id] = layer_records(root)
        big = root / "overlay" / layer_id / "diff/big"
        assert hashlib.sha256(big.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
        check = subprocess.run([*cli, "system", "check"], capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, (check.stdout, check.stderr)
