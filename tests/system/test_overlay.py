"""A container's storage on the real kernel: overlay mounts through the l/ short links, the
loop-backed ext4 disk quota, and teardown that leaves no mount, loop device or directory."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from reconciler.adapters import overlay
from reconciler.core.errors import QuotaUnsupported, StorageError
from reconciler.core.layout import Layout
from tests.fixtures.containers import inspect

CID = "c0ffee" * 10 + "abcd"


@pytest.fixture
def layout(root):
    lay = Layout(root)
    yield lay
    # Whatever a failing test left: the loop devices of its images (root's fixture unmounts).
    for img in root.glob("overlay/*/disk.img*"):
        for dev in overlay.loop_devices_for(img):
            subprocess.run(["losetup", "-d", dev], check=False)


def make_layers(layout: Layout, count: int) -> list[str]:
    """Layers as the layer store publishes them: overlay/<chain>/diff and overlay/l/<short>.

    Layer i holds /layer-i and /top (saying i), so the topmost layer's /top must win.
    Returns the lowerdirs, topmost first, as LayerStore.lowerdirs() does.
    """
    links = Path(layout.short_links_dir)
    links.mkdir(parents=True, exist_ok=True)
    lowers = []
    for i in range(count):
        chain = f"{i:064x}"
        diff = Path(layout.layer_dir(chain), "diff")
        diff.mkdir(parents=True)
        (diff / f"layer-{i}").write_text(str(i))
        (diff / "top").write_text(str(i))
        short = f"S{i:025d}"                         # 26 characters, like containers/storage's
        Path(layout.layer_dir(chain), "link").write_text(short)
        os.symlink(f"../{chain}/diff", links / short)
        lowers.insert(0, f"l/{short}")
    return lowers


def losetup_j(image: Path) -> str:
    return subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True,
                          check=True).stdout.strip()


def rw_dir(layout: Layout, cid: str = CID) -> Path:
    return Path(layout.rw_layer_dir(cid))


def assert_gone(layout: Layout, cid: str = CID) -> None:
    d = rw_dir(layout, cid)
    assert overlay.mounts_under(layout.root) == []
    assert losetup_j(d / "disk.img") == ""
    assert not d.exists()


def test_rootfs_layers_upper_wins_writes_go_to_diff_and_remove_leaves_nothing(layout):
    lowers = make_layers(layout, 3)
    overlay.create_rw_layer(layout, CID)
    merged = overlay.mount_rootfs(layout, CID, lowers)
    assert merged == Path(layout.rw_layer_dir(CID), "merged")
    assert sorted(p.name for p in merged.iterdir()) == ["layer-0", "layer-1", "layer-2", "top"]
    assert (merged / "top").read_text() == "2"
    (merged / "new").write_text("hello")
    assert (rw_dir(layout) / "diff" / "new").read_text() == "hello"
    assert not Path(layout.layer_dir(f"{2:064x}"), "diff", "new").exists()

    overlay.unmount_rootfs(layout, CID)
    assert not overlay.is_mounted(merged)
    merged = Path(overlay.mount_rootfs(layout, CID, lowers))     # a restart sees its own writes
    assert (merged / "new").read_text() == "hello"
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)
    assert Path(layout.layer_dir(f"{0:064x}"), "diff", "layer-0").exists()   # the image is untouched


def test_sixty_layers_fit_in_one_page_through_the_short_links(layout):
    lowers = make_layers(layout, 60)
    overlay.create_rw_layer(layout, CID)
    data = overlay.overlay_mount_data(layout, CID, lowers)
    absolute = ":".join(f"{layout.layer_dir(f'{i:064x}')}/diff" for i in range(60))
    assert len(absolute) > overlay.PAGE_SIZE             # what the short links are for
    assert len(data) < overlay.PAGE_SIZE // 2
    merged = Path(overlay.mount_rootfs(layout, CID, lowers))
    assert (merged / "top").read_text() == "59"
    assert (merged / "layer-0").read_text() == "0"
    mounted_opts = overlay.mounts()[str(merged)][2]
    assert "lowerdir=l/" in mounted_opts
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def _volatile(options: str) -> bool:
    return bool({"volatile", "fsync=volatile"} & set(options.split(",")))     # newer kernels say the latter


def test_volatile_rootfs_skips_syncs_and_mounts_again_in_the_same_boot(layout):
    lowers = make_layers(layout, 1)
    overlay.create_rw_layer(layout, CID)
    merged = Path(overlay.mount_rootfs(layout, CID, lowers, volatile=True))
    assert _volatile(overlay.mounts()[str(merged)][2])
    (merged / "kept").write_text("x")
    overlay.unmount_rootfs(layout, CID)
    assert (rw_dir(layout) / "work/work/incompat/volatile").is_dir()     # the kernel's mark
    merged = Path(overlay.mount_rootfs(layout, CID, lowers))          # a restart, same boot
    assert (merged / "kept").read_text() == "x"
    assert not _volatile(overlay.mounts()[str(merged)][2])
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_volatile_rootfs_left_by_an_earlier_boot_is_refused(layout):
    lowers = make_layers(layout, 1)
    overlay.create_rw_layer(layout, CID)
    overlay.mount_rootfs(layout, CID, lowers, volatile=True)
    overlay.unmount_rootfs(layout, CID)
    (rw_dir(layout) / "volatile-boot").write_text("an-earlier-boot")    # as after a host crash
    with pytest.raises(StorageError) as e:
        overlay.mount_rootfs(layout, CID, lowers)
    assert "went down" in str(e.value) and "docker-mini rm" in e.value.hint
    assert overlay.mounts_under(layout.root) == []
    overlay.remove_rw_layer(layout, CID)                                 # rm still works
    assert_gone(layout)


def test_mount_twice_is_one_mount(layout):
    lowers = make_layers(layout, 1)
    overlay.create_rw_layer(layout, CID)
    overlay.create_rw_layer(layout, CID)
    overlay.mount_rootfs(layout, CID, lowers)
    overlay.mount_rootfs(layout, CID, lowers)
    assert overlay.mounts_under(layout.root) == [Path(layout.rw_layer_dir(CID), "merged")]
    with open("/proc/self/mountinfo") as f:
        assert sum(f"{layout.rw_layer_dir(CID)}/merged" in line for line in f) == 1
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_image_without_layers_still_mounts(layout):
    overlay.create_rw_layer(layout, CID)
    merged = Path(overlay.mount_rootfs(layout, CID, []))
    (merged / "f").write_text("x")
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_missing_layer_is_a_clear_error_and_mounts_nothing(layout):
    overlay.create_rw_layer(layout, CID)
    with pytest.raises(StorageError, match="layer l/GONE of container"):
        overlay.mount_rootfs(layout, CID, ["l/GONE"])
    assert overlay.mounts_under(layout.root) == []
    overlay.remove_rw_layer(layout, CID)


def test_quota_method_on_this_host_is_the_loop(layout):
    # This kernel has neither XFS quota nor ext4 quota formats (see DESIGN.md), and / is not
    # mounted with prjquota: the loop-backed ext4 path is what works here.
    os.makedirs(layout.root, exist_ok=True)
    assert overlay.quota_method(layout.root) == "loop"


def test_disk_quota_write_past_the_limit_fails_with_enospc(layout):
    lowers = make_layers(layout, 2)
    overlay.create_rw_layer(layout, CID, 8 << 20)
    d = rw_dir(layout)
    image = d / "disk.img"
    assert image.stat().st_blocks * 512 < image.stat().st_size   # sparse
    fs = os.statvfs(d / "upper-fs")
    assert 8 << 20 <= fs.f_bavail * fs.f_frsize <= (8 << 20) * 1.02  # the size asked for, usable
    assert losetup_j(image) != ""
    merged = Path(overlay.mount_rootfs(layout, CID, lowers))

    ok = subprocess.run(["dd", "if=/dev/zero", f"of={merged}/small", "bs=1M", "count=2"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    full = subprocess.run(["dd", "if=/dev/zero", f"of={merged}/big", "bs=1M", "count=16"],
                          capture_output=True, text=True)
    assert full.returncode != 0
    assert "No space left on device" in full.stderr
    # Everything up to the limit was written: 2 MB + what the 16 MB copy got before ENOSPC.
    assert (merged / "big").stat().st_size >= (6 << 20) - (64 << 10)
    with pytest.raises(OSError) as err:
        with open(merged / "more", "wb") as f:
            f.write(b"x" * (1 << 20))
            f.flush()
            os.fsync(f.fileno())
    assert err.value.errno == errno.ENOSPC
    # The layer's writes live on the image, not on the host filesystem.
    assert (d / "upper-fs" / "diff" / "small").stat().st_size == 2 << 20
    assert (d / "diff" / "small").exists()

    overlay.unmount_rootfs(layout, CID)                      # a stopped container holds no device
    assert overlay.mounts_under(layout.root) == []
    assert losetup_j(image) == ""
    merged = Path(overlay.mount_rootfs(layout, CID, lowers))     # and a restart keeps its data
    assert (merged / "small").stat().st_size == 2 << 20
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


@pytest.mark.parametrize("size", [0, -1, 4096, (1 << 20) - 1])
def test_impossible_sizes_are_refused_and_create_nothing(layout, size):
    with pytest.raises(QuotaUnsupported) as err:
        overlay.create_rw_layer(layout, CID, size)
    assert str(size) in str(err.value)
    assert not rw_dir(layout).exists()


# ----- kill -9 at any step: re-running finishes the job or undoes it ---------------------------

def test_killed_during_mkfs_create_again_finishes(layout):
    d = rw_dir(layout)
    d.mkdir(parents=True)
    (d / "disk.img.tmp").write_bytes(b"half an image")
    overlay.create_rw_layer(layout, CID, 4 << 20)
    assert not (d / "disk.img.tmp").exists()
    merged = Path(overlay.mount_rootfs(layout, CID, make_layers(layout, 1)))
    assert (merged / "top").read_text() == "0"
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_killed_during_mkfs_remove_cleans_up(layout):
    d = rw_dir(layout)
    d.mkdir(parents=True)
    (d / "disk.img.tmp").write_bytes(b"half an image")
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_killed_after_loop_attach_before_mount_remove_detaches(layout):
    overlay.create_rw_layer(layout, CID, 4 << 20)
    overlay.unmount_rootfs(layout, CID)
    image = rw_dir(layout) / "disk.img"
    subprocess.run(["losetup", "--find", str(image)], check=True)   # as if mount(8) died here
    assert losetup_j(image) != ""
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_killed_while_everything_is_mounted_remove_undoes_it(layout):
    lowers = make_layers(layout, 2)
    overlay.create_rw_layer(layout, CID, 4 << 20)
    overlay.mount_rootfs(layout, CID, lowers)
    (rw_dir(layout) / "diff").unlink()             # and half-way through create, too
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_killed_before_the_rootfs_mount_start_again_mounts(layout):
    lowers = make_layers(layout, 1)
    overlay.create_rw_layer(layout, CID, 4 << 20)
    overlay.unmount_rootfs(layout, CID)                      # e.g. after a host reboot
    merged = Path(overlay.mount_rootfs(layout, CID, lowers))
    (merged / "x").write_text("y")
    assert (rw_dir(layout) / "upper-fs" / "diff" / "x").exists()
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_remove_is_idempotent(layout):
    overlay.remove_rw_layer(layout, CID)
    overlay.create_rw_layer(layout, CID)
    overlay.remove_rw_layer(layout, CID)
    overlay.remove_rw_layer(layout, CID)
    assert_gone(layout)


def test_without_mkfs_a_sized_layer_is_unsupported_and_leaves_nothing(layout, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(QuotaUnsupported, match="mkfs.ext4") as err:
        overlay.create_rw_layer(layout, CID, 8 << 20)
    assert "e2fsprogs" in str(err.value)
    assert not rw_dir(layout).exists()


def test_a_torn_quota_record_does_not_block_removal(layout):
    """quota.json (project-quota hosts) torn by a crash must not make rm fail forever."""
    overlay.create_rw_layer(layout, CID, None)
    (rw_dir(layout) / "quota.json").write_text('{"projid": ')
    overlay.remove_rw_layer(layout, CID)
    assert not rw_dir(layout).exists()


def test_rm_of_a_container_that_made_a_1200_deep_tree_leaves_nothing(dmc, busybox, root):
    """Deeper than Python's recursion limit: removal must not depend on it."""
    deep = "i=0; while [ $i -lt 1200 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; echo x > leaf"
    dmc("run", "--name", "deep", "--network", "none", busybox, "sh", "-c", deep)
    cid = inspect(dmc, "deep")["Id"]
    assert Path(root, "overlay", cid, "diff", *["d"] * 1200, "leaf").read_text() == "x\n"
    dmc("rm", "deep")
    assert dmc("ps", "-aq").stdout == ""
    assert not Path(root, "overlay", cid).exists()
    assert not Path(root, "overlay-containers", cid).exists()
