"""Pulling from a real docker-registry into the seed's store, through the real CLI."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time

import pytest
import requests

from tests.fixtures.images import (COMPRESSIONS, assert_nothing_registered, big_data, images_json,
                                   layer_dirs, layer_records, push_blob, push_image, registry_get)
from tests.fixtures.registry import OPAQUE, WHITEOUT, tar_from_dict


def test_single_layer_pull_registers_like_the_seed(dm, registry, busybox_ref):
    out = dm("pull", busybox_ref).stdout
    assert out.strip().splitlines()[-1] == str(busybox_ref)
    assert "Pull complete" in out and f"Digest: {busybox_ref.digest}" in out
    root = dm.root
    [(image_hex, rec)] = images_json(root).items()
    assert rec["id"] == image_hex and rec["names"] == [str(busybox_ref)]
    assert rec["digest"] == busybox_ref.digest
    assert rec["created"] and rec["loaded"]
    # big-data: the raw config (its digest is the image id) and the raw manifest
    raw_manifest = registry_get(registry, f"test/busybox/manifests/{busybox_ref.digest}", busybox_ref.media_type)
    assert big_data(root, image_hex, busybox_ref.digest) == raw_manifest
    config = big_data(root, image_hex, f"sha256:{image_hex}")
    assert hashlib.sha256(config).hexdigest() == image_hex
    assert set(rec["big-data-names"]) == {f"sha256:{image_hex}", busybox_ref.digest}
    assert rec["big-data-sizes"][busybox_ref.digest] == len(raw_manifest)
    # the layer: chain id = diff_id for the base, extracted, linked
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    assert rec["layer"] == diff_ids[0].split(":")[1]
    assert layer_records(root) == [rec["layer"]]
    layer = root / "overlay" / rec["layer"]
    busybox = layer / "diff/bin/busybox"
    assert busybox.stat().st_mode & 0o111 and os.readlink(layer / "diff/bin/sh") == "busybox"
    assert stat.S_IMODE((layer / "diff/tmp").stat().st_mode) == 0o1777
    short = (layer / "link").read_text()
    assert os.readlink(root / "overlay/l" / short) == f"../{rec['layer']}/diff"
    # running the extracted busybox proves the bytes are right
    assert subprocess.run([str(busybox), "true"]).returncode == 0


def test_multi_layer_pull_with_whiteouts_and_chain(dm, image_builder):
    ref = image_builder("test/multi", [
        {"etc/motd": "one", "opt/app/a": "a", "var/cache/x": "x", "var/cache/y": "y"},
        {"etc/motd": WHITEOUT, "var/cache": OPAQUE, "var/cache/new": "n"},
    ], base="busybox")
    dm("pull", ref)
    root = dm.root
    [(image_hex, rec)] = images_json(root).items()
    config = json.loads(big_data(root, image_hex, f"sha256:{image_hex}"))
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(diff_ids) == 3 and len(layer_records(root)) == 3
    top = root / "overlay" / rec["layer"]
    wh = os.lstat(top / "diff/etc/motd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(top / "diff/var/cache", "trusted.overlay.opaque") == b"y"
    lower = (top / "lower").read_text().split(":")
    assert len(lower) == 2 and all(p.startswith("l/") for p in lower)
    # mount the image the way containers will, and look at the merged view
    merged = root / "m"
    merged.mkdir()
    chain = [f"l/{(top / 'link').read_text()}"] + lower
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={':'.join(chain)}", str(merged)],
                   check=True, cwd=root / "overlay")
    try:
        assert not (merged / "etc/motd").exists()
        assert (merged / "opt/app/a").read_text() == "a"
        assert sorted(os.listdir(merged / "var/cache")) == ["new"]
        assert (merged / "bin/busybox").exists()
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_shared_layers_are_stored_once(dm, image_builder, busybox_ref):
    one = image_builder("test/shared-one", [{"one": "1"}], base="busybox")
    two = image_builder("test/shared-two", [{"two": "2"}], base="busybox")
    dm("pull", one)
    out = dm("pull", two).stdout
    assert "Already exists" in out
    assert len(layer_records(dm.root)) == 3 and len(layer_dirs(dm.root)) == 3
    assert len(images_json(dm.root)) == 2


def test_tag_moved_to_a_new_digest_keeps_the_old_image(dm, image_builder):
    old = image_builder("test/moving", [{"version": "1"}], base="busybox")
    dm("pull", old)
    new = image_builder("test/moving", [{"version": "2"}], base="busybox")
    assert new.digest != old.digest
    dm("pull", new)
    recs = images_json(dm.root)
    assert len(recs) == 2
    by_digest = {r["digest"]: r for r in recs.values()}
    assert by_digest[new.digest]["names"] == [str(new)]
    assert by_digest[old.digest]["names"] == []
    rows = [json.loads(line) for line in dm("images", "--format", "json").stdout.splitlines()]
    assert sorted((r["Repository"], r["Tag"]) for r in rows) == sorted([
        ("<none>", "<none>"), (str(new).rsplit(":", 1)[0], "latest")])
    # the old image is still whole and removable by id
    old_id = next(i for i, r in recs.items() if r["digest"] == old.digest)
    out = dm("rmi", old_id[:12]).stdout
    assert f"Deleted: sha256:{old_id}" in out
    assert len(images_json(dm.root)) == 1


def test_pull_by_digest(dm, image_builder):
    ref = image_builder("test/bydigest", [{"d": "d"}], base="busybox")
    by_digest = ref.by_digest
    out = dm("pull", by_digest).stdout
    assert out.strip().splitlines()[-1] == by_digest
    [rec] = images_json(dm.root).values()
    assert rec["names"] == [by_digest] and rec["digest"] == ref.digest
    rows = [json.loads(line) for line in dm("images", "--format", "json").stdout.splitlines()]
    assert [(r["Repository"], r["Tag"]) for r in rows] == [(by_digest.split("@")[0], "<none>")]
    # a digest that is not the manifest's is refused
    wrong = by_digest.split("@")[0] + "@sha256:" + "0" * 64
    proc = dm("pull", wrong, check=False)
    assert proc.returncode != 0


def test_diff_id_mismatch_registers_nothing(dm, registry):
    good = tar_from_dict({"file": "content"})
    push_image(registry, "test/baddiff", "latest", [good],
               diff_ids=["sha256:" + hashlib.sha256(b"something else").hexdigest()])
    proc = dm("pull", f"{registry.addr}/test/baddiff:latest", check=False)
    assert proc.returncode != 0
    assert "diff_id" in proc.stderr
    assert_nothing_registered(dm.root)


def test_corrupted_blob_registers_nothing(dm, registry):
    layers = [tar_from_dict({"a": os.urandom(4096).hex()}), tar_from_dict({"b": os.urandom(100_000).hex()})]
    push_image(registry, "test/corrupt", "latest", layers)
    manifest = json.loads(registry_get(registry, "test/corrupt/manifests/latest",
                                       "application/vnd.oci.image.manifest.v1+json"))
    blob = registry.blob_data(manifest["layers"][1]["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    proc = dm("pull", f"{registry.addr}/test/corrupt:latest", check=False)
    assert proc.returncode != 0
    assert "digest" in proc.stderr or "corrupt" in proc.stderr.lower()
    assert images_json(dm.root) == {}
    # the good first layer may be kept for next time, but never the corrupt one
    assert set(layer_records(dm.root)) <= {hashlib.sha256(layers[0]).hexdigest()}
    tmp = dm.root / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.fixture(scope="module")
def big_ref(image_builder):
    """One big incompressible layer, so a pull can be caught in the middle."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(6):
            data = os.urandom(8 << 20)
            ti = tarfile.TarInfo(f"data/blob{i}")
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return image_builder("test/big", [buf.getvalue()])


def test_kill_9_mid_pull_leaves_nothing_complete_and_next_pull_succeeds(dm, big_ref):
    root = dm.root
    cmd = [sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(dm.config_file), "pull", big_ref]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    caught = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            staging = list((root / "tmp").glob("layer-*/diff/data/*")) if (root / "tmp").exists() else []
            if staging:
                proc.send_signal(signal.SIGKILL)
                caught = True
                break
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if not caught:
        pytest.skip("the pull finished before it could be killed")  # should not happen with 48 MB
    assert images_json(root) == {}
    assert layer_records(root) == []
    assert layer_dirs(root) == []            # nothing renamed into place
    assert list((root / "tmp").glob("layer-*"))  # the half layer is left in staging only
    dm("pull", big_ref)
    [rec] = images_json(root).values()
    assert (root / "overlay" / rec["layer"] / "diff/data/blob5").stat().st_size == 8 << 20
    assert list((root / "tmp").iterdir()) == []  # the stale staging dir was cleaned


def test_bad_reference_and_unknown_image(dm, registry):
    proc = dm("pull", "Busybox:latest", check=False)
    assert proc.returncode == 1 and "invalid reference" in proc.stderr
    proc = dm("pull", f"{registry.addr}/test/does-not-exist:latest", check=False)
    assert proc.returncode == 1 and "not found" in proc.stderr.lower()
    assert_nothing_registered(dm.root)


def test_quiet_pull_prints_only_the_reference(dm, busybox_ref):
    assert dm("pull", "-q", busybox_ref).stdout == f"{busybox_ref}\n"


def test_index_picks_the_host_platform_not_the_first_entry(dm, image_builder):
    ref = image_builder.index("test/multiarch", [
        {"platform": "linux/arm64/v8", "layers": [{"arch": "arm64"}]},
        {"platform": "linux/amd64", "layers": [{"arch": "amd64"}]},
    ])
    out = dm("pull", ref).stdout
    assert f"Digest: {ref.digest}" in out  # the index digest, as Docker shows it
    [(image_hex, rec)] = images_json(dm.root).items()
    config = json.loads(big_data(dm.root, image_hex, f"sha256:{image_hex}"))
    assert config["architecture"] == "amd64"
    assert (dm.root / "overlay" / rec["layer"] / "diff/arch").read_text() == "amd64"
    amd64_manifest = dict(ref.children)["linux/amd64"]
    assert rec["digest"] == amd64_manifest
    [info] = json.loads(dm("inspect", ref).stdout)
    assert info["RepoDigests"] == [f"{ref.rsplit(':', 1)[0]}@{ref.digest}"]
    # --platform picks another entry; the tag moves to it
    dm("pull", "--platform", "linux/arm64", ref)
    arm = [r for r in images_json(dm.root).values() if r["names"]]
    assert len(arm) == 1 and arm[0]["digest"] == dict(ref.children)["linux/arm64/v8"]
    proc = dm("pull", "--platform", "linux/s390x", ref, check=False)
    assert proc.returncode != 0 and "s390x" in proc.stderr


def test_single_platform_image_of_another_arch_is_refused_with_platform_and_warned_without(dm, image_builder):
    ref = image_builder("test/armonly", [{"arch": "arm64"}], platform="linux/arm64")
    proc = dm("pull", "--platform", "linux/amd64", ref, check=False)
    assert proc.returncode != 0
    assert "linux/arm64" in proc.stderr and "not the requested linux/amd64" in proc.stderr
    assert images_json(dm.root) == {}
    out = dm("pull", ref).stdout
    assert "WARNING" in out and "linux/arm64" in out
    assert len(images_json(dm.root)) == 1


def _pull_proc(dm, ref):
    return subprocess.Popen([sys.executable, "-m", "reconciler", "--root", str(dm.root), "--config",
                             str(dm.config_file), "pull", "-q", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_downloads_do_not_wait_for_the_state_lock(dm, big_ref):
    from reconciler.adapters import statefiles
    root = dm.root
    with statefiles.locked(root / "lock"):
        proc = _pull_proc(dm, big_ref)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not list(root.glob("tmp/layer-*/diff/data/blob5")):
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.01)
            assert list(root.glob("tmp/layer-*/diff/data/blob5")), "the download waited for the lock"
            assert images_json(root) == {}  # registration does wait
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(images_json(root)) == 1 and list((root / "tmp").iterdir()) == []


def test_concurrent_pulls_of_the_same_image_both_succeed(dm, image_builder):
    ref = image_builder("test/race", [{"a": "a"}, {"b": os.urandom(1 << 20).hex()}], base="busybox")
    procs = [_pull_proc(dm, ref) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert len(images_json(dm.root)) == 1
    assert len(layer_records(dm.root)) == 3 and len(layer_dirs(dm.root)) == 3
    assert len(list((dm.root / "overlay/l").iterdir())) == 3
    assert list((dm.root / "tmp").iterdir()) == []


def test_zstd_and_uncompressed_layers(dm, registry):
    layers = [tar_from_dict({"a/zstd": "z" * 10000}), tar_from_dict({"a/plain": "p"}),
              tar_from_dict({"a/gz": "g", "a/plain": WHITEOUT})]
    push_image(registry, "test/compressions", "latest", layers, compression=["zstd", "none", "gzip"])
    dm("pull", f"{registry.addr}/test/compressions:latest")
    [rec] = images_json(dm.root).values()
    top = dm.root / "overlay" / rec["layer"]
    assert stat.S_ISCHR(os.lstat(top / "diff/a/plain").st_mode)
    chain = [json.loads((dm.root / "overlay-layers" / f"{c}.json").read_text()) for c in layer_records(dm.root)]
    assert sorted(c["size"] for c in chain) == sorted(len(t) for t in layers)
