"""`images`, `inspect IMAGE` and `rmi` through the real CLI, against real pulls."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.fixtures.images import images_json, layer_dirs, layer_records


def test_images_table_quiet_and_json(dm, busybox_ref, image_builder):
    other = image_builder("test/listing", [{"x": "x"}], base="busybox")
    dm("pull", "-q", busybox_ref)
    dm("pull", "-q", other)
    lines = dm("images").stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]
    repos = {(r[0], r[1]) for r in rows}
    assert repos == {(busybox_ref.rsplit(":", 1)[0], "latest"), (other.rsplit(":", 1)[0], "latest")}
    for r in rows:
        assert re.fullmatch(r"[0-9a-f]{12}", r[2])
        assert r[3].endswith("ago")
        assert re.fullmatch(r"[\d.]+(?:MB|kB|B)", r[4])
    ids = dm("images", "-q").stdout.split()
    assert sorted(ids) == sorted(r[2] for r in rows)
    js = [json.loads(line) for line in dm("images", "--format", "json").stdout.splitlines()]
    assert {j["ID"] for j in js} == set(ids)
    only = dm("images", "--format", "json", other.rsplit(":", 1)[0]).stdout.splitlines()
    assert [json.loads(line)["Repository"] for line in only] == [other.rsplit(":", 1)[0]]
    assert dm("images", "-q", f"{other.rsplit(':', 1)[0]}:nope").stdout == ""


def test_inspect_image_has_dockers_shape(dm, image_builder):
    ref = image_builder("test/inspected", [{"srv/index.html": "hi"}], base="busybox",
                        cmd=["httpd", "-f"], env={"MODE": "prod"}, workdir="/srv", labels={"a": "b"})
    dm("pull", ref)
    [info] = json.loads(dm("inspect", ref).stdout)
    [(image_hex, rec)] = images_json(dm.root).items()
    assert info["Id"] == f"sha256:{image_hex}"
    assert info["RepoTags"] == [str(ref)]
    assert info["RepoDigests"] == [f"{ref.rsplit(':', 1)[0]}@{ref.digest}"]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert re.match(r"\d{4}-\d\d-\d\dT", info["Created"])
    assert info["Config"]["Cmd"] == ["httpd", "-f"] and info["Config"]["WorkingDir"] == "/srv"
    assert "MODE=prod" in info["Config"]["Env"] and info["Config"]["Labels"] == {"a": "b"}
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 2
    assert info["Size"] > 1_000_000
    # by short id and by digest too
    assert json.loads(dm("inspect", image_hex[:12]).stdout)[0]["Id"] == info["Id"]
    assert json.loads(dm("inspect", ref.by_digest).stdout)[0]["Id"] == info["Id"]


def test_rmi_of_shared_layers_keeps_the_other_image_working(dmc, image_builder, busybox_ref):
    one = image_builder("test/rmi-one", [{"one": "1"}], base="busybox", cmd=["cat", "/one"])
    two = image_builder("test/rmi-two", [{"two": "2"}], base="busybox", cmd=["cat", "/two"])
    dmc("pull", one)
    dmc("pull", two)
    assert len(layer_records(dmc.root)) == 3
    out = dmc("rmi", one).stdout.splitlines()
    assert out[0] == f"Untagged: {one}"
    deleted = [line.split(": ")[1] for line in out if line.startswith("Deleted: ")]
    assert len(deleted) == 2  # the image and its own top layer; busybox's layer stays
    assert len(layer_records(dmc.root)) == 2 and len(layer_dirs(dmc.root)) == 2
    assert dmc("run", "--rm", "--network", "none", two).stdout == "2"
    proc = dmc("rmi", one, check=False)
    assert proc.returncode == 1 and "No such image" in proc.stderr


def test_rmi_of_one_of_several_names_only_untags(dm, busybox_ref, image_builder):
    dm("pull", busybox_ref)
    again = image_builder.push(image_builder.busybox_tag(), "test/busybox-alias", "v1")
    dm("pull", again)
    assert len(images_json(dm.root)) == 1
    out = dm("rmi", again).stdout
    assert out == f"Untagged: {again}\n"
    [rec] = images_json(dm.root).values()
    assert rec["names"] == [str(busybox_ref)] and len(layer_records(dm.root)) == 1
    # by id with names in two repositories: must be forced
    dm("pull", again)
    proc = dm("rmi", rec["id"][:12], check=False)
    assert proc.returncode == 1 and "referenced in multiple repositories" in proc.stderr
    out = dm("rmi", "-f", rec["id"][:12]).stdout
    assert f"Deleted: sha256:{rec['id']}" in out and "Untagged: " in out
    assert images_json(dm.root) == {} and layer_records(dm.root) == []


def test_ambiguous_or_unknown_names(dm, busybox_ref):
    dm("pull", busybox_ref)
    proc = dm("rmi", "0123456789ab", check=False)
    assert proc.returncode == 1 and "No such image: 0123456789ab" in proc.stderr
    proc = dm("rmi", f"{busybox_ref}-nope", check=False)
    assert proc.returncode == 1


def test_rmi_refuses_an_image_a_container_uses(dmc, busybox_ref):
    dmc("pull", busybox_ref)
    cid = dmc("create", "--network", "none", busybox_ref, "sleep", "30").stdout.strip()
    [(image_hex, _)] = images_json(dmc.root).items()
    proc = dmc("rmi", busybox_ref, check=False)
    assert proc.returncode == 1
    assert "(must force)" in proc.stderr and cid[:12] in proc.stderr
    proc = dmc("rmi", image_hex[:12], check=False)
    assert proc.returncode == 1 and "stopped container" in proc.stderr
    assert len(images_json(dmc.root)) == 1
    # running: even -f cannot delete it (by id); by name -f only untags, as Docker does
    dmc("start", cid)
    proc = dmc("rmi", "-f", image_hex[:12], check=False)
    assert proc.returncode == 1 and "(cannot be forced)" in proc.stderr and "running container" in proc.stderr
    out = dmc("rmi", "-f", busybox_ref).stdout
    assert out == f"Untagged: {busybox_ref}\n"
    [rec] = images_json(dmc.root).values()
    assert rec["names"] == []
    dmc("kill", cid)
    dmc("wait", cid)
    # stopped + force: the image goes, the layers the container runs on stay
    out = dmc("rmi", "-f", image_hex[:12]).stdout
    assert f"Deleted: sha256:{image_hex}" in out
    assert images_json(dmc.root) == {} and len(layer_records(dmc.root)) == 1
    dmc("rm", cid)


def test_prune_layers_removes_only_unneeded_layers(dm, registry, busybox_ref):
    from reconciler.core.config import parse_config
    from reconciler.engine import images
    from reconciler.engine.engine import Engine
    from tests.fixtures.images import push_image
    from tests.fixtures.registry import tar_from_dict

    dm("pull", busybox_ref)
    # a failed pull leaves its good first layer behind
    layers = [tar_from_dict({"keep-me-not": "1"}), tar_from_dict({"x": "2"})]
    push_image(registry, "test/prune", "latest", layers, diff_ids=[
        "sha256:" + hashlib.sha256(layers[0]).hexdigest(), "sha256:" + "1" * 64])
    assert dm("pull", f"{registry.addr}/test/prune:latest", check=False).returncode != 0
    assert len(layer_records(dm.root)) == 2
    engine = Engine(dm.root, parse_config(dm.config_file.read_text()))
    removed = images.prune_layers(engine)
    assert len(removed) == 1 and len(layer_records(dm.root)) == 1
    assert images.prune_layers(engine) == []


def test_store_resolves_names_ids_prefixes_and_refuses_ambiguous_prefixes(root):
    from reconciler.adapters import statefiles
    from reconciler.adapters.imagestore import ImageStore
    from reconciler.core.errors import ImageNotFound, InvalidArgument
    from reconciler.core.layout import Layout

    store = ImageStore(Layout(root), statefiles)
    by_first: dict[str, list] = {}
    n = 0
    while not any(len(v) == 2 for v in by_first.values()):
        config = json.dumps({"n": n}).encode()
        rec, _ = store.register(config_raw=config, manifest_raw=b"{}", layer="",
                                manifest_digest="sha256:" + hashlib.sha256(b"m%d" % n).hexdigest(),
                                names=[f"docker.io/library/img{n}:latest"])
        by_first.setdefault(rec.id[7], []).append(rec)
        n += 1
    a, b = next(v for v in by_first.values() if len(v) == 2)
    with pytest.raises(InvalidArgument, match="ambiguous"):
        store.resolve(a.id[7])
    assert store.resolve(a.id).id == a.id and store.resolve(a.id[7:]).id == a.id
    assert store.resolve(a.short_id).id == a.id
    name = a.names[0].split("/")[-1]                 # "imgN:latest" -> docker.io/library/imgN:latest
    assert store.resolve(name).id == a.id and store.resolve(name.split(":")[0]).id == a.id
    with pytest.raises(ImageNotFound):
        store.resolve("nothing-here")
    # a name moves; the old holder keeps the rest of its life, untagged
    rec, taken = store.register(config_raw=b'{"moved": 1}', manifest_raw=b"{}", layer="",
                                manifest_digest="sha256:" + "2" * 64, names=list(a.names))
    assert [(o.id, nm) for o, nm in taken] == [(a.id, a.names[0])]
    assert store.get(a.id).names == () and store.resolve(name).id == rec.id


def test_check_storage_finds_and_repairs_crash_leftovers(dm, busybox_ref):
    from reconciler.core.config import parse_config
    from reconciler.engine import images
    from reconciler.engine.engine import Engine

    dm("pull", busybox_ref)
    engine = Engine(dm.root, parse_config(dm.config_file.read_text()))
    assert images.check_storage(engine) == []
    # what kill -9 at various lines leaves: staging, a renamed layer without record, a dangling
    # link, an image dir without its record
    (dm.root / "tmp/layer-1-x/diff/usr").mkdir(parents=True)
    (dm.root / "overlay" / ("a" * 64) / "diff").mkdir(parents=True)
    (dm.root / "overlay/l/ZZZZZZZZZZZZZZZZZZZZZZZZZZ").symlink_to("../" + "a" * 64 + "/nothing")
    (dm.root / "overlay-images" / ("b" * 64)).mkdir()
    found = images.check_storage(engine, repair=True)
    assert len(found) == 4, found
    assert images.check_storage(engine) == []
    assert list((dm.root / "tmp").iterdir()) == []
    assert len(layer_dirs(dm.root)) == 1 and len(images_json(dm.root)) == 1
