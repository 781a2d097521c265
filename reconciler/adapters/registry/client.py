"""Registry protocol v2 client: manifests and blobs, verified, with auth and retries."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

import requests

from reconciler.adapters.registry.auth import TokenAuth
from reconciler.adapters.registry.blobs import BlobReader
from reconciler.adapters.registry.transport import reason, registry_error
from reconciler.core.digest import is_digest
from reconciler.core.errors import (
    IntegrityError, RegistryError, RegistryUnreachable, RemoteNotFound, UnsupportedManifest,
)
from reconciler.core.hashing import digest_of
from reconciler.core.manifest import (
    Descriptor, ImageManifest, Index, Platform, manifest_accept_header, parse_manifest,
    select_platform,
)
from reconciler.core.reference import Reference

MANIFEST_MAX = 4 << 20       # containerd's limit: a manifest is small JSON
CONFIG_MAX = 8 << 20         # an image config is small JSON too (history, env, labels)


@dataclass(frozen=True)
class ResolvedImage:
    """The image manifest for one platform. When the reference named an index (manifest list),
    index_* hold it: its digest is what `RepoDigests` shows; manifest_digest is the instance's."""
    manifest_digest: str
    media_type: str
    raw: bytes
    manifest: ImageManifest
    index_digest: str | None = None
    index_media_type: str | None = None
    index_raw: bytes | None = None

    @property
    def repo_digest(self) -> str:
        return self.index_digest or self.manifest_digest


class RegistryClient(TokenAuth):
    """Resolve a reference to its image manifest for a platform; fetch and stream blobs."""

    def _get_manifest(self, ref: Reference, target: str, accept: str) -> tuple[bytes, str, str | None]:
        shown = f"{ref.familiar_name()}{'@' if ':' in target else ':'}{target}"   # a digest or a tag
        resp = self._request(ref, "GET", f"manifests/{target}", headers={"Accept": accept},
                             stream=True, what=f"the manifest of {shown}")
        try:
            if resp.status_code == 404:
                raise RemoteNotFound(f"{shown} not found in {ref.domain}: {registry_error(resp)}")
            if resp.status_code != 200:
                raise RegistryError(f"{ref.domain} answered the manifest request for {ref.familiar()} "
                                    f"with {registry_error(resp)}")
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MANIFEST_MAX:
                raise RegistryError(f"the manifest of {ref.familiar()} is {declared} bytes; "
                                    f"more than {MANIFEST_MAX} is not a real manifest")
            raw = resp.raw.read(MANIFEST_MAX + 1, decode_content=True)
            if len(raw) > MANIFEST_MAX:
                raise RegistryError(f"the manifest of {ref.familiar()} is larger than {MANIFEST_MAX} bytes")
            return raw, resp.headers.get("Content-Type", ""), resp.headers.get("Docker-Content-Digest")
        except (requests.RequestException, OSError) as e:
            raise RegistryUnreachable(f"{ref.domain}: connection lost reading a manifest ({reason(e)})") from None
        finally:
            resp.close()

    @staticmethod
    def _check_manifest_digest(ref: Reference, raw: bytes, expected: str, what: str) -> None:
        actual = digest_of(raw, expected.split(":", 1)[0])
        if actual != expected:
            raise IntegrityError(f"{what} of {ref.familiar_name()} does not match its digest: "
                                 f"expected {expected}, got {actual}")

    def resolve(self, ref: Reference, platform: Platform) -> ResolvedImage:
        """The image manifest of `ref` for `platform` (chosen from an index), every digest checked."""
        target = ref.pull_target
        raw, media_type, header_digest = self._get_manifest(ref, target, manifest_accept_header())
        if ref.digest:
            self._check_manifest_digest(ref, raw, ref.digest, "the manifest")
            digest = ref.digest
        else:
            if header_digest and not is_digest(header_digest):
                header_digest = None
            digest = digest_of(raw, header_digest.split(":", 1)[0] if header_digest else "sha256")
            if header_digest and digest != header_digest:
                raise IntegrityError(f"the manifest of {ref.familiar()} does not match the digest the registry "
                                     f"announced: expected {header_digest}, got {digest}")
        parsed = parse_manifest(raw, media_type)
        index_digest = index_media_type = index_raw = None
        depth = 0
        while isinstance(parsed, Index):
            depth += 1
            if depth > 2:
                raise UnsupportedManifest(f"{ref.familiar()}: indexes nested more than two levels deep")
            chosen: Descriptor = select_platform_for(ref, parsed, platform)
            if index_digest is None:
                index_digest, index_media_type, index_raw = digest, parsed.media_type, raw
            raw, media_type, _ = self._get_manifest(ref, chosen.digest, chosen.media_type + ", "
                                                    + manifest_accept_header())
            if len(raw) != chosen.size:
                raise IntegrityError(f"the {chosen.platform} manifest of {ref.familiar()} is {len(raw)} bytes; "
                                     f"the index says {chosen.size}")
            self._check_manifest_digest(ref, raw, chosen.digest, f"the {chosen.platform} manifest")
            digest = chosen.digest
            parsed = parse_manifest(raw, media_type or chosen.media_type)
        return ResolvedImage(manifest_digest=digest, media_type=parsed.media_type, raw=raw, manifest=parsed,
                             index_digest=index_digest, index_media_type=index_media_type, index_raw=index_raw)

    # -- blobs

    def fetch_blob(self, ref: Reference, descriptor: Descriptor) -> bytes:
        """A small blob (the image config), size and digest verified. Read whole into memory,
        so a manifest declaring a huge one is refused before anything is read."""
        if descriptor.size > CONFIG_MAX:
            raise IntegrityError(f"{ref.familiar()}: the manifest declares a {descriptor.size}-byte "
                                 f"config blob; more than {CONFIG_MAX} is not a real image config")
        with self.open_blob(ref, descriptor) as blob:
            return blob.read()

    @contextlib.contextmanager
    def open_blob(self, ref: Reference, descriptor: Descriptor) -> Iterator["BlobReader"]:
        """A verified stream of a blob: read(n) until b"". A wrong size or digest raises
        IntegrityError from the read that completes the blob; leaving the block normally drains
        and checks what the caller did not read."""
        reader = BlobReader(self, ref, descriptor)
        try:
            yield reader
            reader.finish()
        finally:
            reader.close()

    def _open_blob_response(self, ref: Reference, descriptor: Descriptor, offset: int) -> requests.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        what = f"blob {descriptor.digest[:19]} of {ref.familiar_name()}"
        resp = self._request(ref, "GET", f"blobs/{descriptor.digest}", headers=headers, stream=True, what=what)
        if resp.status_code == 404 and descriptor.urls:
            resp.close()
            for url in descriptor.urls:  # foreign layers: fetched from where the manifest says, no creds
                resp = self._send("GET", url, headers=headers, auth_header=None, stream=True, what=what,
                                  domain=urlsplit(url).netloc)
                if resp.status_code in (200, 206):
                    break
        if resp.status_code == 404:
            message = f"{what} not found in {ref.domain} ({registry_error(resp)})"
            resp.close()
            raise RemoteNotFound(message)
        if resp.status_code == 416:
            resp.close()
            raise IntegrityError(f"{what} ends before byte {offset}: it is shorter than the "
                                 f"{descriptor.size} bytes its descriptor declares")
        total = _announced_total(resp)
        if total is not None and total != descriptor.size:
            resp.close()
            raise IntegrityError(f"{what} is {total} bytes in {ref.domain}; its descriptor declares "
                                 f"{descriptor.size}", hint="the registry's copy is corrupt or truncated")
        if resp.status_code not in (200, 206):
            message = f"{ref.domain} answered the request for {what} with {registry_error(resp)}"
            resp.close()
            raise RegistryError(message)
        return resp


def _announced_total(resp: requests.Response) -> int | None:
    """The blob's full length as the server states it (Content-Length of a 200, Content-Range of a 206)."""
    if resp.status_code == 206:
        m = re.match(r"bytes \d+-\d+/(\d+)", resp.headers.get("Content-Range", ""))
        return int(m.group(1)) if m else None
    length = resp.headers.get("Content-Length")
    if resp.status_code == 200 and length and length.isdigit() and "Content-Encoding" not in resp.headers:
        return int(length)
    return None


def select_platform_for(ref: Reference, index: Index, platform: Platform) -> Descriptor:
    try:
        return select_platform(index, platform)
    except UnsupportedManifest as e:
        raise UnsupportedManifest(f"{ref.familiar()}: {e.message}", hint=e.hint) from None
