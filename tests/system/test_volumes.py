"""Named volumes against real runc containers: the volume CLI, -v NAME:/path and --mount, copy-up
from the image (owners and modes kept), in-use refusal, survival across recreation, prune."""

from __future__ import annotations

import json
import os

import pytest

from tests.fixtures.containers import busybox  # noqa: F401 (fixture)
from tests.fixtures.registry import Dir, File


@pytest.fixture
def seeded_ref(image_builder):
    """busybox with /seed holding files of other owners and modes: what copy-up must keep."""
    return str(image_builder("test/volume-seed", [{
        "seed/": Dir(mode=0o750, uid=1000, gid=1001),
        "seed/conf.txt": File("from the image\n", mode=0o640, uid=1000, gid=1001),
        "seed/sub/": Dir(mode=0o700, uid=33, gid=33),
        "seed/sub/secret": File("s\n", mode=0o600, uid=33, gid=33),
    }], base="busybox", tag="v1"))


def volume_ls(dm) -> list[str]:
    return dm("volume", "ls", "-q").stdout.split()


def test_volume_create_ls_inspect_rm(dmc, root):
    assert dmc("volume", "create", "data").stdout.strip() == "data"
    assert dmc("volume", "create", "--label", "team=shop", "other").returncode == 0
    assert dmc("volume", "ls", "-q", "-f", "label=team=shop").stdout.split() == ["other"]
    assert dmc("volume", "ls", "-q", "-f", "label=team").stdout.split() == ["other"]
    out = dmc("volume", "ls").stdout.splitlines()
    assert out[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert [line.split() for line in out[1:]] == [["local", "data"], ["local", "other"]]
    info = json.loads(dmc("volume", "inspect", "other").stdout)[0]
    assert info["Name"] == "other" and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"team": "shop"}
    assert info["Mountpoint"] == str(root / "volumes" / "other" / "_data")
    assert os.path.isdir(info["Mountpoint"])
    assert dmc("volume", "inspect", "-f", "{{.Mountpoint}}", "other").stdout.strip() == info["Mountpoint"]
    assert dmc("volume", "ls", "--format", "{{.Driver}}/{{.Name}}").stdout.split() == ["local/data", "local/other"]
    assert json.loads(dmc("volume", "ls", "--format", "json").stdout.splitlines()[1])["Labels"] == "team=shop"
    assert dmc("volume", "rm", "data", "other").stdout.split() == ["data", "other"]
    assert volume_ls(dmc) == []
    missing = dmc("volume", "rm", "data", check=False)
    assert missing.returncode == 1 and "no such volume" in missing.stderr
    assert dmc("volume", "rm", "-f", "data").returncode == 0
    bad = dmc("volume", "create", "bad name", check=False)
    assert bad.returncode != 0 and "invalid characters" in bad.stderr and "Traceback" not in bad.stderr
    anonymous = dmc("volume", "create").stdout.strip()
    assert len(anonymous) == 64 and volume_ls(dmc) == [anonymous]
    dmc("volume", "rm", anonymous)


def test_copy_up_keeps_owners_and_modes_and_data_survives_the_container(dmc, seeded_ref, root):
    dmc("run", "--rm", "-v", "seeded:/seed", seeded_ref, "sh", "-c", "echo written > /seed/new.txt")
    data = root / "volumes" / "seeded" / "_data"
    st = data.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1001, 0o750)
    conf = (data / "conf.txt").stat()
    assert (conf.st_uid, conf.st_gid, conf.st_mode & 0o7777) == (1000, 1001, 0o640)
    sub = (data / "sub" / "secret").stat()
    assert (sub.st_uid, sub.st_mode & 0o7777) == (33, 0o600)
    assert (data / "new.txt").read_text() == "written\n"
    # a second container sees what the first wrote; a volume that holds data is not copied over
    out = dmc("run", "--rm", "--mount", "type=volume,source=seeded,target=/seed,readonly", seeded_ref,
              "sh", "-c", "cat /seed/new.txt /seed/conf.txt; touch /seed/x 2>/dev/null || echo read-only")
    assert out.stdout.splitlines() == ["written", "from the image", "read-only"]
    dmc("volume", "rm", "seeded")


def test_rm_of_a_volume_in_use_is_refused_and_prune_keeps_it(dmc, busybox):
    cid = dmc("create", "--name", "user", "-v", "kept:/data", busybox, "true").stdout.strip()
    dmc("volume", "create", "unused")
    assert volume_ls(dmc) == ["kept", "unused"]
    assert dmc("volume", "ls", "-q", "-f", "dangling=true").stdout.split() == ["unused"]
    assert dmc("volume", "ls", "-q", "--filter", "dangling=false").stdout.split() == ["kept"]
    assert dmc("volume", "ls", "-q", "-f", "name=unu").stdout.split() == ["unused"]
    bad = dmc("volume", "ls", "-f", "colour=red", check=False)
    assert bad.returncode != 0 and "invalid filter" in bad.stderr and "Traceback" not in bad.stderr
    refused = dmc("volume", "rm", "kept", check=False)
    assert refused.returncode == 1
    assert f"remove kept: volume is in use - [{cid}]" in refused.stderr
    out = dmc("volume", "prune", "-f").stdout
    assert "Deleted Volumes:\nunused\n" in out and "Total reclaimed space:" in out
    assert volume_ls(dmc) == ["kept"]
    dmc("rm", "user")
    assert volume_ls(dmc) == ["kept"]                    # rm of the container keeps its volume
    dmc("system", "prune", "-f", "--volumes")
    assert volume_ls(dmc) == []


def test_bind_and_tmpfs_mounts_with_the_mount_flag(dmc, busybox, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("bound\n")
    out = dmc("run", "--rm", "--mount", f"type=bind,source={host},target=/b,readonly",
              "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", busybox,
              "sh", "-c", "cat /b/f; grep ' /t ' /proc/mounts | cut -d' ' -f3")
    assert out.stdout.splitlines() == ["bound", "tmpfs"]
    bad = dmc("run", "--rm", "--mount", "type=volume,target=/x", busybox, "true", check=False)
    assert bad.returncode == 125 and "anonymous volumes are not supported" in bad.stderr


def test_what_an_interrupted_rm_left_is_not_handed_to_a_new_volume(dmc, root):
    leftover = root / "volumes" / "reused" / "_data"
    leftover.mkdir(parents=True)
    (leftover / "old").write_text("old data")          # rm was killed after the metadata went
    assert "reused" not in dmc("volume", "ls", "-q").stdout.split()
    dmc("volume", "create", "reused")
    assert list(leftover.iterdir()) == []
    dmc("volume", "rm", "reused")
    assert not (root / "volumes" / "reused").exists()


def test_a_native_stack_s_volumes_down_keeps_them_down_v_removes_its_own(dmc, busybox_ref, tmp_path, root):
    from tests.fixtures.stacks import LOOP

    dmc("volume", "create", "shared")
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"""stack: vols
volumes:
  data: {{}}
  shared: {{external: true}}
containers:
  db:
    image: {busybox_ref}
    network: none
    command: [sh, -c, "echo x >> /data/log; {LOOP}"]
    volumes: ["data:/data", "shared:/shared:ro"]
    tmpfs: ["/run:size=1m"]
""")
    dmc("apply", "-f", str(spec))
    assert sorted(dmc("volume", "ls", "-q").stdout.split()) == ["shared", "vols_data"]
    mounts = {m["Destination"]: m for m in json.loads(dmc("inspect", "vols-db").stdout)[0]["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == "vols_data"
    assert mounts["/shared"]["RW"] is False
    dmc("down", "-f", str(spec))
    assert sorted(dmc("volume", "ls", "-q").stdout.split()) == ["shared", "vols_data"]
    # a volume of the stack that another container still uses is kept, and down -v says so
    dmc("create", "--name", "other", "-v", "vols_data:/d", busybox_ref, "true")
    kept = dmc("down", "-v", "-f", str(spec), check=False)
    assert kept.returncode == 1 and "volume vols_data kept: remove vols_data: volume is in use" in kept.stderr
    dmc("rm", "other")
    out = dmc("down", "-v", "-f", str(spec)).stdout
    assert "Deleted volume: vols_data" in out
    assert dmc("volume", "ls", "-q").stdout.split() == ["shared"]       # external: never the stack's
    assert (root / "volumes" / "shared" / "_data").is_dir()
    dmc("volume", "rm", "shared")
