"""Image manifests and indexes (Docker schema2 and OCI), and picking a platform. Pure.

Schema1 manifests are refused: they are deprecated, unverifiable without their JWS signature
and no longer pushed by any current tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from reconciler.core.digest import validate_digest
from reconciler.core.errors import InvalidArgument, RegistryError, UnsupportedManifest

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
MT_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = (MT_DOCKER_MANIFEST, MT_OCI_MANIFEST)
INDEX_TYPES = (MT_DOCKER_LIST, MT_OCI_INDEX)
SCHEMA1_TYPES = (MT_SCHEMA1, MT_SCHEMA1_SIGNED)
# What a client should Accept, most preferred first.
ACCEPT_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)

MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
CONFIG_TYPES = (MT_DOCKER_CONFIG, MT_OCI_CONFIG)

# layer media type -> compression ("gzip", "zstd" or None for a plain tar)
LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": None,
    "application/vnd.oci.image.layer.v1.tar": None,
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": None,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}
# Content types some registries use when they have nothing better: trust the body then.
_GENERIC_TYPES = ("", "application/json", "text/plain", "application/octet-stream",
                  "binary/octet-stream")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def normalized(self) -> "Platform":
        arch, variant = normalize_arch(self.architecture, self.variant)
        return Platform(self.os.lower(), arch, variant)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def compression(self) -> str | None:
        """For layers: "gzip", "zstd" or None (a plain tar)."""
        return LAYER_TYPES.get(self.media_type)


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def platforms(self) -> list[Platform]:
        return [d.platform for d in self.manifests if d.platform is not None]


# --------------------------------------------------------------------------- platforms

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386",
                 "i486": "386", "i586": "386", "i686": "386", "armv7l": "arm", "armv6l": "arm",
                 "armv5tel": "arm", "armhf": "arm", "armel": "arm", "ppc64el": "ppc64le"}
# arm variants a CPU of each variant runs, best first
_ARM_COMPATIBLE = {"v8": ("v8", "v7", "v6", "v5"), "v7": ("v7", "v6", "v5"),
                   "v6": ("v6", "v5"), "v5": ("v5",)}
_AMD64_COMPATIBLE = {"v4": ("v4", "v3", "v2", "v1"), "v3": ("v3", "v2", "v1"),
                     "v2": ("v2", "v1"), "v1": ("v1",)}


def normalize_arch(architecture: str, variant: str | None) -> tuple[str, str | None]:
    """containerd's normalization: aliases resolved, arm defaults to v7, arm64 v8 is no variant."""
    raw = (architecture or "").lower()
    variant = (variant or "").lower() or None
    if raw == "armv7l":
        variant = variant or "v7"
    elif raw == "armv6l" or raw == "armel":
        variant = variant or "v6"
    elif raw == "armv5tel":
        variant = variant or "v5"
    elif raw == "armhf":
        variant = variant or "v7"
    arch = _ARCH_ALIASES.get(raw, raw)
    if variant and variant.isdigit():
        variant = "v" + variant
    if arch == "arm64" and variant == "v8":
        variant = None
    elif arch == "arm" and variant is None:
        variant = "v7"
    elif arch == "amd64" and variant == "v1":
        variant = None
    return arch, variant


def parse_platform(text: str) -> Platform:
    """"linux/arm64/v8", "linux/amd64", "arm64" (os linux assumed) -> normalized Platform."""
    parts = (text or "").strip().split("/")
    if not text or not all(parts) or len(parts) > 3:
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64/v8")
    if len(parts) == 1:
        parts = ["linux", parts[0]]
    os_, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else None
    if os_.lower() != "linux":
        raise InvalidArgument(f"invalid platform {text!r}: only linux images can run here")
    return Platform(os_, arch, variant).normalized()


def platform_for_machine(machine: str) -> Platform:
    """The host's platform from uname's machine field (x86_64, aarch64, armv7l...)."""
    return Platform("linux", machine).normalized()


def _variant_rank(wanted: Platform, offered: Platform) -> int | None:
    """0 for an exact match, higher for a worse but runnable one, None if it cannot run."""
    if offered.variant == wanted.variant:
        return 0
    if wanted.architecture == "arm":
        order = _ARM_COMPATIBLE.get(wanted.variant or "v7", (wanted.variant,))
        return order.index(offered.variant) if offered.variant in order else None
    if wanted.architecture == "amd64":
        order = _AMD64_COMPATIBLE.get(wanted.variant or "v1", (wanted.variant,))
        return order.index(offered.variant or "v1") if (offered.variant or "v1") in order else None
    if wanted.variant is None:
        return 1  # no preference stated: any variant of the architecture
    return None


def platform_matches(wanted: Platform, offered: Platform) -> bool:
    """Can a host of `wanted` run an image built for `offered`?"""
    want, got = wanted.normalized(), offered.normalized()
    return want.os == got.os and want.architecture == got.architecture and _variant_rank(want, got) is not None


def platform_of_config(config: dict) -> Platform | None:
    """The platform an image config declares (os, architecture, variant), if it declares one."""
    os_, arch = config.get("os"), config.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        return None
    variant = config.get("variant")
    return Platform(os_, arch, variant if isinstance(variant, str) and variant else None)


def select_platform(index: Index, wanted: Platform) -> Descriptor:
    """The index entry best matching `wanted`, wherever it is listed. Exact variant first, then
    older compatible variants (an arm v8 CPU runs v7 images); ties go to the earlier entry."""
    want = wanted.normalized()
    best: tuple[int, int, Descriptor] | None = None
    for position, desc in enumerate(index.manifests):
        if desc.platform is None:
            continue
        offered = desc.platform.normalized()
        if offered.os != want.os or offered.architecture != want.architecture:
            continue
        rank = _variant_rank(want, offered)
        if rank is None:
            continue
        if best is None or (rank, position) < best[:2]:
            best = (rank, position, desc)
    if best is None:
        available = sorted({str(p) for p in index.platforms()
                            if p.os not in ("unknown", "") and p.architecture not in ("unknown", "")})
        raise UnsupportedManifest(
            f"no image for platform {want} in the manifest list; available platforms: "
            + (", ".join(available) if available else "none"),
            hint="choose one with --platform os/arch[/variant]")
    return best[2]


# --------------------------------------------------------------------------- parsing

def _bad(why: str) -> RegistryError:
    return RegistryError(f"malformed manifest: {why}")


def _platform(obj, where: str) -> Platform | None:
    if obj is None:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("os"), str) \
            or not isinstance(obj.get("architecture"), str):
        raise _bad(f"{where}.platform must have string fields os and architecture")
    variant = obj.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise _bad(f"{where}.platform.variant must be a string")
    return Platform(obj["os"], obj["architecture"], variant or None)


def _descriptor(obj, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise _bad(f"{where} must be an object")
    media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _bad(f"{where}.mediaType is missing")
    try:
        validate_digest(digest, f"{where}.digest")
    except InvalidArgument as e:
        raise _bad(e.message) from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(f"{where}.size must be a non-negative integer, got {size!r}")
    urls = obj.get("urls")
    urls = [] if urls is None else urls
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _bad(f"{where}.urls must be a list of strings")
    annotations = obj.get("annotations")
    annotations = {} if annotations is None else annotations
    if not isinstance(annotations, dict):
        raise _bad(f"{where}.annotations must be an object")
    return Descriptor(media_type, digest, size, _platform(obj.get("platform"), where), tuple(urls),
                      tuple(sorted((str(k), str(v)) for k, v in annotations.items())))


def _detect_type(served: str, body: dict) -> str:
    declared = body.get("mediaType")
    if body.get("schemaVersion") == 1 or served in SCHEMA1_TYPES or declared in SCHEMA1_TYPES:
        raise UnsupportedManifest(
            "this image has a schema1 manifest, a deprecated format docker-mini does not support",
            hint="push the image again with a current Docker, Podman or skopeo (schema2 or OCI)")
    if body.get("schemaVersion") != 2:
        raise _bad(f"schemaVersion must be 2, got {body.get('schemaVersion')!r}")
    known = MANIFEST_TYPES + INDEX_TYPES
    if served in known:
        if declared not in (None, served):
            raise _bad(f"served as {served} but its mediaType field says {declared}")
        return served
    if served not in _GENERIC_TYPES:
        raise UnsupportedManifest(f"unsupported manifest media type {served!r}")
    if declared in known:
        return declared
    if declared is not None:
        raise UnsupportedManifest(f"unsupported manifest media type {declared!r}")
    if "manifests" in body:  # OCI allows omitting mediaType
        return MT_OCI_INDEX
    if "config" in body and "layers" in body:
        return MT_OCI_MANIFEST
    raise _bad("neither an image manifest nor an index")


def parse_manifest(raw: bytes, media_type: str | None) -> Index | ImageManifest:
    """Parse manifest bytes as served with Content-Type `media_type` (parameters allowed)."""
    served = (media_type or "").split(";", 1)[0].strip().lower()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(f"not valid JSON ({e})") from None
    except RecursionError:
        raise _bad("nested too deeply") from None
    if not isinstance(body, dict):
        raise _bad("not a JSON object")
    kind = _detect_type(served, body)

    if kind in INDEX_TYPES:
        entries = body.get("manifests")
        if not isinstance(entries, list):
            raise _bad("manifests must be a list")
        return Index(kind, tuple(_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries)))

    config = _descriptor(body.get("config"), "config")
    if config.media_type not in CONFIG_TYPES:
        raise UnsupportedManifest(
            f"not a container image: its config has media type {config.media_type!r}",
            hint="this is probably an artifact (a Helm chart, signature, SBOM...) rather than an image")
    layers_raw = body.get("layers")
    if not isinstance(layers_raw, list):
        raise _bad("layers must be a list")
    layers = tuple(_descriptor(e, f"layers[{i}]") for i, e in enumerate(layers_raw))
    for i, layer in enumerate(layers):
        if layer.media_type not in LAYER_TYPES:
            raise UnsupportedManifest(f"layer {i} ({layer.digest}) has unsupported media type "
                                      f"{layer.media_type!r}",
                                      hint="supported: tar, tar+gzip and tar+zstd layers")
    annotations = body.get("annotations")
    annotations = {} if annotations is None else annotations
    if not isinstance(annotations, dict):
        raise _bad("annotations must be an object")
    return ImageManifest(kind, config, layers,
                         tuple(sorted((str(k), str(v)) for k, v in annotations.items())))


def manifest_accept_header() -> str:
    return ", ".join(ACCEPT_TYPES)
