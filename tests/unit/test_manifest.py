"""Manifests and indexes: parsing the four supported types, refusing the rest, picking platforms."""

from __future__ import annotations

import json

import pytest

from reconciler.core.errors import InvalidArgument, RegistryError, UnsupportedManifest
from reconciler.core.manifest import (
    MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_OCI_MANIFEST, Descriptor, ImageManifest, Index,
    Platform, manifest_accept_header, parse_manifest, parse_platform, platform_for_machine, platform_matches,
    platform_of_config, select_platform,
)

D = ["sha256:" + c * 64 for c in "0123456789abcdef"]
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


def image(media_type=MT_DOCKER_MANIFEST, config_type=DOCKER_CONFIG, layer_types=(DOCKER_GZIP,), **extra):
    body = {"schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": D[0], "size": 100},
            "layers": [{"mediaType": t, "digest": D[i + 1], "size": 1000 + i} for i, t in enumerate(layer_types)]}
    body.update(extra)
    return json.dumps(body).encode()


def index(platforms, media_type=MT_OCI_INDEX, child_type=MT_OCI_MANIFEST, drop_media_type=False):
    entries = []
    for i, p in enumerate(platforms):
        entry = {"mediaType": child_type, "digest": D[i], "size": 500 + i}
        if p is not None:
            parts = p.split("/")
            entry["platform"] = {"os": parts[0], "architecture": parts[1]}
            if len(parts) > 2:
                entry["platform"]["variant"] = parts[2]
        entries.append(entry)
    body = {"schemaVersion": 2, "manifests": entries}
    if not drop_media_type:
        body["mediaType"] = media_type
    return json.dumps(body).encode()


# ------------------------------------------------------------------ parsing

@pytest.mark.parametrize("raw,served,kind,media_type", [
    (image(), MT_DOCKER_MANIFEST, ImageManifest, MT_DOCKER_MANIFEST),
    (image(MT_OCI_MANIFEST, OCI_CONFIG, (OCI_GZIP, OCI_ZSTD, OCI_TAR)), MT_OCI_MANIFEST, ImageManifest,
     MT_OCI_MANIFEST),
    (index(["linux/amd64"], MT_DOCKER_LIST, MT_DOCKER_MANIFEST), MT_DOCKER_LIST, Index, MT_DOCKER_LIST),
    (index(["linux/amd64"]), MT_OCI_INDEX, Index, MT_OCI_INDEX),
    # content-type parameters are ignored
    (image(), MT_DOCKER_MANIFEST + "; charset=utf-8", ImageManifest, MT_DOCKER_MANIFEST),
    # a generic content type: the body's mediaType decides
    (image(), "application/json", ImageManifest, MT_DOCKER_MANIFEST),
    (index(["linux/amd64"], MT_DOCKER_LIST), "", Index, MT_DOCKER_LIST),
    # OCI documents may omit mediaType
    (index(["linux/amd64"], drop_media_type=True), MT_OCI_INDEX, Index, MT_OCI_INDEX),
    (index(["linux/amd64"], drop_media_type=True), "application/octet-stream", Index, MT_OCI_INDEX),
    (json.dumps({"schemaVersion": 2, "config": {"mediaType": OCI_CONFIG, "digest": D[0], "size": 1},
                 "layers": []}).encode(), None, ImageManifest, MT_OCI_MANIFEST),
])
def test_parse_supported(raw, served, kind, media_type):
    parsed = parse_manifest(raw, served)
    assert isinstance(parsed, kind)
    assert parsed.media_type == media_type


def test_parse_image_manifest_fields():
    raw = image(MT_OCI_MANIFEST, OCI_CONFIG, (OCI_GZIP, OCI_ZSTD, OCI_TAR), annotations={"a": "b"})
    m = parse_manifest(raw, MT_OCI_MANIFEST)
    assert m.config == Descriptor(OCI_CONFIG, D[0], 100)
    assert [layer.digest for layer in m.layers] == D[1:4]
    assert [layer.size for layer in m.layers] == [1000, 1001, 1002]
    assert [layer.compression for layer in m.layers] == ["gzip", "zstd", None]
    assert m.annotations == (("a", "b"),)


def test_parse_index_fields():
    idx = parse_manifest(index(["linux/arm/v7", "linux/amd64", None]), MT_OCI_INDEX)
    assert [d.digest for d in idx.manifests] == D[:3]
    assert idx.manifests[0].platform == Platform("linux", "arm", "v7")
    assert idx.manifests[1].platform == Platform("linux", "amd64")
    assert idx.manifests[2].platform is None
    assert idx.platforms() == [Platform("linux", "arm", "v7"), Platform("linux", "amd64")]


SCHEMA1 = json.dumps({"schemaVersion": 1, "name": "library/busybox", "tag": "latest",
                      "architecture": "amd64", "fsLayers": [{"blobSum": D[1]}],
                      "history": [{"v1Compatibility": "{}"}]}).encode()


@pytest.mark.parametrize("raw,served", [
    (SCHEMA1, "application/vnd.docker.distribution.manifest.v1+prettyjws"),
    (SCHEMA1, "application/vnd.docker.distribution.manifest.v1+json"),
    (SCHEMA1, "application/json"),
    (SCHEMA1, ""),
    (image(), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
])
def test_schema1_is_refused_clearly(raw, served):
    with pytest.raises(UnsupportedManifest) as exc:
        parse_manifest(raw, served)
    assert "schema1" in exc.value.message
    assert "schema2 or OCI" in str(exc.value)


@pytest.mark.parametrize("raw,served,phrase", [
    (b"not json", MT_DOCKER_MANIFEST, "not valid JSON"),
    (b"\xff\xfe", MT_DOCKER_MANIFEST, "not valid JSON"),
    (b"[]", MT_DOCKER_MANIFEST, "not a JSON object"),
    (json.dumps({"schemaVersion": 3}).encode(), MT_DOCKER_MANIFEST, "schemaVersion must be 2"),
    (json.dumps({"schemaVersion": 2}).encode(), "application/json", "neither an image manifest nor an index"),
    (image(), MT_OCI_MANIFEST, "mediaType field says"),
    (json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": {}}).encode(), MT_OCI_INDEX,
     "manifests must be a list"),
    (json.dumps({"schemaVersion": 2, "mediaType": MT_DOCKER_MANIFEST, "config": {"mediaType": DOCKER_CONFIG,
     "digest": D[0], "size": 1}}).encode(), MT_DOCKER_MANIFEST, "layers must be a list"),
    (json.dumps({"schemaVersion": 2, "mediaType": MT_DOCKER_MANIFEST, "layers": []}).encode(),
     MT_DOCKER_MANIFEST, "config must be an object"),
    (image(config_type=DOCKER_CONFIG).replace(D[0].encode(), b"sha256:1234"), MT_DOCKER_MANIFEST,
     "config.digest"),
    (image().replace(b'"size": 100}', b'"size": -1}'), MT_DOCKER_MANIFEST, "config.size"),
    (image().replace(b'"size": 100}', b'"size": "100"}'), MT_DOCKER_MANIFEST, "config.size"),
    (image().replace(b'"size": 100}', b'"size": true}'), MT_DOCKER_MANIFEST, "config.size"),
    (image().replace(b'"size": 1000', b'"size": 1.5'), MT_DOCKER_MANIFEST, "layers[0].size"),
    (json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [
        {"mediaType": MT_OCI_MANIFEST, "digest": D[0], "size": 1, "platform": {"os": "linux"}}]}).encode(),
     MT_OCI_INDEX, "platform must have"),
    (json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [
        {"digest": D[0], "size": 1}]}).encode(), MT_OCI_INDEX, "manifests[0].mediaType is missing"),
])
def test_malformed_manifests(raw, served, phrase):
    with pytest.raises(RegistryError) as exc:
        parse_manifest(raw, served)
    assert phrase in exc.value.message
    assert not isinstance(exc.value, UnsupportedManifest) or "unsupported" in exc.value.message


@pytest.mark.parametrize("raw,served,phrase", [
    (image(), "application/vnd.example.thing+json", "unsupported manifest media type"),
    (json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.x+json"}).encode(), "application/json",
     "unsupported manifest media type"),
    (image(MT_OCI_MANIFEST, "application/vnd.cncf.helm.config.v1+tar+gzip"), MT_OCI_MANIFEST,
     "not a container image"),
    (image(layer_types=("application/vnd.oci.image.layer.v1.tar+gzip+encrypted",)), MT_DOCKER_MANIFEST,
     "unsupported media type"),
    (image(layer_types=(DOCKER_GZIP, "application/x-unknown")), MT_DOCKER_MANIFEST, "layer 1"),
])
def test_unsupported_content(raw, served, phrase):
    with pytest.raises(UnsupportedManifest) as exc:
        parse_manifest(raw, served)
    assert phrase in exc.value.message


def test_accept_header_lists_all_four_types():
    header = manifest_accept_header()
    for mt in (MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_OCI_INDEX):
        assert mt in header
    assert "v1+prettyjws" not in header


# ------------------------------------------------------------------ platforms

@pytest.mark.parametrize("text,expected", [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/x86_64", Platform("linux", "amd64")),
    ("linux/amd64/v1", Platform("linux", "amd64")),
    ("linux/amd64/v3", Platform("linux", "amd64", "v3")),
    ("linux/arm64", Platform("linux", "arm64")),
    ("linux/arm64/v8", Platform("linux", "arm64")),
    ("linux/aarch64", Platform("linux", "arm64")),
    ("linux/arm", Platform("linux", "arm", "v7")),
    ("linux/arm/v6", Platform("linux", "arm", "v6")),
    ("linux/arm/7", Platform("linux", "arm", "v7")),
    ("linux/armhf", Platform("linux", "arm", "v7")),
    ("linux/armel", Platform("linux", "arm", "v6")),
    ("linux/i386", Platform("linux", "386")),
    ("linux/ppc64le", Platform("linux", "ppc64le")),
    ("linux/s390x", Platform("linux", "s390x")),
    ("Linux/AMD64", Platform("linux", "amd64")),
    ("arm64", Platform("linux", "arm64")),
])
def test_parse_platform(text, expected):
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text,phrase", [
    ("", "expected os/arch"), ("linux/", "expected os/arch"), ("/amd64", "expected os/arch"),
    ("linux/arm/v7/x", "expected os/arch"), ("windows/amd64", "only linux"),
])
def test_parse_platform_rejects(text, phrase):
    with pytest.raises(InvalidArgument) as exc:
        parse_platform(text)
    assert phrase in exc.value.message


@pytest.mark.parametrize("machine,expected", [
    ("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("armv7l", "linux/arm/v7"),
    ("armv6l", "linux/arm/v6"), ("i686", "linux/386"), ("ppc64le", "linux/ppc64le"), ("s390x", "linux/s390x"),
    ("riscv64", "linux/riscv64"),
])
def test_platform_for_machine(machine, expected):
    assert str(platform_for_machine(machine)) == expected


COMMON = ["linux/arm/v6", "linux/arm/v7", "linux/arm64/v8", "linux/386", "linux/amd64", "linux/ppc64le"]

# (entries in index order, wanted platform) -> index of the chosen entry
SELECT = [
    (COMMON, "linux/amd64", 4),                        # not the first entry
    (COMMON, "linux/arm64", 2),                        # arm64 == arm64/v8
    (COMMON, "linux/arm64/v8", 2),
    (COMMON, "linux/arm/v7", 1),
    (COMMON, "linux/arm/v6", 0),
    (COMMON, "linux/arm", 1),                          # arm means v7
    (COMMON, "linux/arm/v8", 1),                       # a v8 CPU in 32-bit mode runs v7, best below v8
    (["linux/arm/v5", "linux/arm/v6"], "linux/arm/v7", 1),   # best compatible older variant
    (["linux/arm/v7", "linux/arm/v6"], "linux/arm/v6", 1),   # never a newer variant
    (["linux/arm64", "linux/arm64/v8"], "linux/arm64", 0),   # ties go to the earlier entry
    (["linux/arm"], "linux/arm/v7", 0),                # no variant on arm means v7
    (["linux/amd64/v3", "linux/amd64"], "linux/amd64", 1),   # a baseline host cannot run v3
    (["linux/amd64", "linux/amd64/v3"], "linux/amd64/v3", 1),
    (["linux/amd64", "linux/amd64/v2"], "linux/amd64/v3", 1),
    (["linux/amd64/v1"], "linux/amd64", 0),
    (["unknown/unknown", "linux/amd64"], "linux/amd64", 1),  # buildx attestations are skipped
    ([None, "linux/amd64"], "linux/amd64", 1),          # entries without a platform are skipped
    (["linux/s390x", "linux/x86_64"], "linux/amd64", 1),  # aliases in the index itself
    (["Linux/AMD64"], "linux/amd64", 0),
    (["linux/riscv64", "linux/riscv64/rva22"], "linux/riscv64", 0),
]


@pytest.mark.parametrize("entries,wanted,chosen", SELECT, ids=[f"{w}-{i}" for i, (_, w, _) in enumerate(SELECT)])
def test_select_platform(entries, wanted, chosen):
    idx = parse_manifest(index(entries), MT_OCI_INDEX)
    assert select_platform(idx, parse_platform(wanted)).digest == D[chosen]


@pytest.mark.parametrize("entries,wanted", [
    (["linux/arm64", "linux/arm/v7", "unknown/unknown"], "linux/amd64"),
    (["linux/arm/v7"], "linux/arm/v6"),
    (["linux/amd64/v3"], "linux/amd64"),
    (["windows/amd64"], "linux/amd64"),
    ([], "linux/amd64"),
])
def test_select_platform_lists_what_is_available(entries, wanted):
    idx = parse_manifest(index(entries), MT_OCI_INDEX)
    with pytest.raises(UnsupportedManifest) as exc:
        select_platform(idx, parse_platform(wanted))
    message = exc.value.message
    assert str(parse_platform(wanted)) in message
    for p in entries:
        if p and not p.startswith("unknown"):
            assert str(Platform(*p.split("/"))) in message
    assert "unknown" not in message
    assert "--platform" in str(exc.value)


@pytest.mark.parametrize("config,wanted,expected", [
    ({"os": "linux", "architecture": "amd64"}, "linux/amd64", True),
    ({"os": "linux", "architecture": "arm64"}, "linux/amd64", False),
    ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64", True),
    ({"os": "linux", "architecture": "arm", "variant": "v6"}, "linux/arm/v7", True),
    ({"os": "linux", "architecture": "arm", "variant": "v7"}, "linux/arm/v6", False),
    ({"os": "windows", "architecture": "amd64"}, "linux/amd64", False),
])
def test_single_manifest_platform_check(config, wanted, expected):
    """For an image that is not an index, the config says which platform it is for."""
    assert platform_matches(parse_platform(wanted), platform_of_config(config)) is expected


@pytest.mark.parametrize("config", [{}, {"os": "linux"}, {"architecture": "amd64"}, {"os": 1, "architecture": "x"}])
def test_config_without_platform(config):
    assert platform_of_config(config) is None
