"""The registry client against a real docker-registry (anonymous, htpasswd, token auth), plus small
in-process HTTP servers on loopback for what docker-registry cannot be made to do (schema1,
cross-host redirects, 5xx/429, a connection dropped mid-blob)."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reconciler.adapters.registry import RegistryClient, is_loopback, parse_challenges
from reconciler.core.hashing import sha256_of
from reconciler.core.errors import (
    AuthError, IntegrityError, RegistryError, RegistryUnreachable, RemoteNotFound, UnsupportedManifest,
)
from reconciler.core.manifest import (
    MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_OCI_MANIFEST, Descriptor, parse_platform,
)
from reconciler.core.reference import parse_reference
from tests.fixtures.registry import free_port, start_token_registry

AMD64 = parse_platform("linux/amd64")


def client(creds=None, **kw) -> RegistryClient:
    kw.setdefault("backoff", 0.01)
    return RegistryClient(credentials=(lambda domain: creds) if creds else None, **kw)


def unique_layer() -> dict:
    return {"data/unique": uuid.uuid4().hex * 1000}


# ------------------------------------------------------------------ anonymous, real registry

@pytest.mark.parametrize("fmt,media_type", [("v2s2", MT_DOCKER_MANIFEST), ("oci", MT_OCI_MANIFEST)])
def test_resolve_and_stream_an_image(image_builder, fmt, media_type):
    ref_text = image_builder("test/client-basic", [{"etc/hello": "hello\n"}], base="busybox", tag=fmt,
                             format=fmt, cmd=["cat", "/etc/hello"])
    c = client()
    ref = parse_reference(ref_text)
    image = c.resolve(ref, AMD64)
    assert image.media_type == media_type
    assert image.manifest_digest == ref_text.digest == sha256_of(image.raw)
    assert image.index_digest is None and image.repo_digest == image.manifest_digest
    assert len(image.manifest.layers) == 2
    config = json.loads(c.fetch_blob(ref, image.manifest.config))
    assert config["config"]["Cmd"] == ["cat", "/etc/hello"]
    assert len(config["rootfs"]["diff_ids"]) == 2
    layer = image.manifest.layers[1]
    with c.open_blob(ref, layer) as blob:
        parts = []
        while chunk := blob.read(1000):
            parts.append(chunk)
        assert blob.verified and blob.bytes_read == layer.size
    assert sha256_of(b"".join(parts)) == layer.digest


def test_open_blob_verifies_what_the_caller_left_unread(busybox_ref):
    c = client()
    ref = parse_reference(busybox_ref)
    layer = c.resolve(ref, AMD64).manifest.layers[0]
    with c.open_blob(ref, layer) as blob:
        blob.read(10)
    assert blob.verified


def test_pull_by_digest(busybox_ref):
    c = client()
    ref = parse_reference(busybox_ref.by_digest)
    assert ref.digest == busybox_ref.digest
    image = c.resolve(ref, AMD64)
    assert image.manifest_digest == busybox_ref.digest
    # tag and digest together: the digest wins
    both = parse_reference(busybox_ref.rsplit(":", 1)[0] + ":no-such-tag@" + busybox_ref.digest)
    assert c.resolve(both, AMD64).manifest_digest == busybox_ref.digest


def test_unknown_digest_tag_and_repository(busybox_ref, registry):
    c = client()
    name = busybox_ref.rsplit(":", 1)[0]
    with pytest.raises(RemoteNotFound) as exc:
        c.resolve(parse_reference(name + ":no-such-tag"), AMD64)
    assert "no-such-tag" in exc.value.message and registry.addr in exc.value.message
    with pytest.raises(RemoteNotFound):
        c.resolve(parse_reference(name + "@sha256:" + "0" * 64), AMD64)
    with pytest.raises(RemoteNotFound) as exc:
        c.resolve(parse_reference(f"{registry.addr}/no/such-repo:latest"), AMD64)
    assert "no/such-repo" in exc.value.message


def test_missing_blob_is_remote_not_found(busybox_ref):
    c = client()
    ref = parse_reference(busybox_ref)
    with pytest.raises(RemoteNotFound):
        c.fetch_blob(ref, Descriptor(MT_OCI_MANIFEST, "sha256:" + "1" * 64, 10))


def test_a_huge_declared_config_is_refused_before_reading(busybox_ref):
    """fetch_blob reads the config into memory: a manifest declaring gigabytes must not make us try."""
    ref = parse_reference(busybox_ref)
    with pytest.raises(IntegrityError, match="config blob"):
        client().fetch_blob(ref, Descriptor(MT_OCI_MANIFEST, "sha256:" + "1" * 64, 6 << 30))


@pytest.mark.parametrize("fmt,index_type", [("oci", MT_OCI_INDEX), ("v2s2", MT_DOCKER_LIST)])
def test_index_whose_first_entry_is_not_the_host(image_builder, fmt, index_type):
    ref_text = image_builder.index("test/multiarch", [
        {"platform": "linux/arm64/v8", "base": "busybox", "layers": [{"platform": "arm64\n"}]},
        {"platform": "linux/arm/v7", "base": "busybox", "layers": [{"platform": "arm/v7\n"}]},
        {"platform": "linux/amd64", "base": "busybox", "layers": [{"platform": "amd64\n"}]},
    ], tag=fmt, format=fmt)
    children = dict(ref_text.children)
    c = client()
    ref = parse_reference(ref_text)
    for wanted, expected in [("linux/amd64", "linux/amd64"), ("linux/arm64", "linux/arm64/v8"),
                             ("linux/arm/v8", "linux/arm/v7")]:
        image = c.resolve(ref, parse_platform(wanted))
        assert image.manifest_digest == children[expected]
        assert image.index_digest == ref_text.digest == image.repo_digest
        assert image.index_media_type == index_type
        config = json.loads(c.fetch_blob(ref, image.manifest.config))
        assert config["architecture"] == expected.split("/")[1]
    with pytest.raises(UnsupportedManifest) as exc:
        c.resolve(ref, parse_platform("linux/s390x"))
    assert "linux/s390x" in exc.value.message
    for p in children:
        assert p in exc.value.message
    # the child's digest pins the platform: pulling it by digest gives that manifest
    by_digest = parse_reference(f"{ref.name}@{children['linux/arm64/v8']}")
    assert c.resolve(by_digest, AMD64).index_digest is None


def test_corrupted_blob_is_an_integrity_error(image_builder, registry):
    ref_text = image_builder("test/corrupt", [unique_layer()], base="busybox")
    c = client()
    ref = parse_reference(ref_text)
    layer = c.resolve(ref, AMD64).manifest.layers[-1]
    data_file = registry.blob_data(layer.digest)
    original = data_file.read_bytes()
    data_file.write_bytes(bytes(b ^ 0xFF for b in original))  # same size, other bytes
    with pytest.raises(IntegrityError) as exc:
        c.fetch_blob(ref, layer)
    assert layer.digest in exc.value.message
    # a truncated blob: the registry sends fewer bytes than the descriptor says
    data_file.write_bytes(original[: len(original) // 2])
    with pytest.raises(IntegrityError):
        c.fetch_blob(ref, layer)
    data_file.write_bytes(original)
    assert sha256_of(c.fetch_blob(ref, layer)) == layer.digest


def test_registry_down_is_unreachable():
    port = free_port()
    c = client(retries=2)
    with pytest.raises(RegistryUnreachable) as exc:
        c.resolve(parse_reference(f"127.0.0.1:{port}/test/busybox"), AMD64)
    assert f"127.0.0.1:{port}" in exc.value.message
    assert "refused" in exc.value.message.lower()
    assert "tried 3 times" in exc.value.message


def test_concurrent_blob_downloads_share_one_client(image_builder):
    ref_text = image_builder("test/concurrent", [unique_layer() for _ in range(6)], base="busybox")
    c = client()
    ref = parse_reference(ref_text)
    layers = c.resolve(ref, AMD64).manifest.layers

    def download(layer):
        with c.open_blob(ref, layer) as blob:
            return sha256_of(blob.read())

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(download, layers)) == [layer.digest for layer in layers]
    c.close()


# ------------------------------------------------------------------ Basic auth (htpasswd)

def test_htpasswd_basic_auth(htpasswd_registry):
    ref = parse_reference(htpasswd_registry.busybox_ref)
    with pytest.raises(AuthError) as exc:
        client().resolve(ref, AMD64)
    assert "login" in str(exc.value)
    with pytest.raises(AuthError) as exc:
        client(("alice", "wrong")).resolve(ref, AMD64)
    assert "'alice'" in exc.value.message
    c = client(htpasswd_registry.creds)
    image = c.resolve(ref, AMD64)
    assert image.manifest_digest == htpasswd_registry.busybox_ref.digest
    layer = image.manifest.layers[0]
    assert sha256_of(c.fetch_blob(ref, layer)) == layer.digest


def test_verify_credentials_basic(htpasswd_registry):
    c = client()
    c.verify_credentials(htpasswd_registry.addr, *htpasswd_registry.creds)
    with pytest.raises(AuthError):
        c.verify_credentials(htpasswd_registry.addr, "alice", "nope")
    with pytest.raises(AuthError):
        c.verify_credentials(htpasswd_registry.addr, "mallory", htpasswd_registry.creds[1])


# ------------------------------------------------------------------ token auth (Docker Hub's scheme)

def test_token_auth_anonymous_pull_of_a_public_repository(token_registry):
    tokens = token_registry.token_server
    before = len(tokens.requests)
    c = client()
    ref = parse_reference(token_registry.busybox_ref)
    image = c.resolve(ref, AMD64)
    c.fetch_blob(ref, image.manifest.config)
    c.fetch_blob(ref, image.manifest.layers[0])
    new = tokens.requests[before:]
    assert len(new) == 1, "one anonymous token, cached for the manifest and both blobs"
    path, authorization = new[0]
    assert authorization is None
    assert "scope=repository%3Atest%2Fbusybox%3Apull" in path and "service=" in path


def test_token_auth_private_repository_needs_credentials(token_registry):
    ref = parse_reference(token_registry.private_ref)
    with pytest.raises(AuthError) as exc:
        client().resolve(ref, AMD64)
    assert "private/busybox" in exc.value.message and "login" in str(exc.value)
    with pytest.raises(AuthError) as exc:
        client(("bob", "wrong")).resolve(ref, AMD64)
    assert "'bob'" in exc.value.message
    tokens = token_registry.token_server
    before = len(tokens.requests)
    c = client(token_registry.creds)
    image = c.resolve(ref, AMD64)
    assert image.manifest_digest == token_registry.private_ref.digest
    assert sha256_of(c.fetch_blob(ref, image.manifest.layers[0])) == image.manifest.layers[0].digest
    new = tokens.requests[before:]
    assert len(new) == 1 and new[0][1].startswith("Basic ")


def test_token_cached_per_scope_and_renewed_when_expired(tmp_path, image_builder):
    reg, tokens = start_token_registry(tmp_path / "short", {"bob": "pw"}, expires_in=2)
    try:
        with reg:
            tag = image_builder.busybox_tag()
            ref_a = parse_reference(image_builder.push(tag, "a/busybox", registry=reg, creds=("bob", "pw")))
            ref_b = parse_reference(image_builder.push(tag, "b/busybox", registry=reg, creds=("bob", "pw")))
            c = client(("bob", "pw"))
            before = len(tokens.requests)
            # expires_in=2 is shorter than the client's safety margin: every request needs a new token
            c.resolve(ref_a, AMD64)
            c.resolve(ref_a, AMD64)
            assert len(tokens.requests) - before == 2
            tokens.expires_in = 300
            before = len(tokens.requests)
            for _ in range(3):
                c.resolve(ref_a, AMD64)
                c.resolve(ref_b, AMD64)
            assert len(tokens.requests) - before == 2, "one token per repository scope, then cached"
    finally:
        tokens.stop()


def test_verify_credentials_token(token_registry):
    c = client()
    c.verify_credentials(token_registry.addr, *token_registry.creds)
    with pytest.raises(AuthError):
        c.verify_credentials(token_registry.addr, "bob", "nope")


def test_concurrent_downloads_fetch_one_token(token_registry):
    tokens = token_registry.token_server
    c = client(token_registry.creds)
    ref = parse_reference(token_registry.private_ref)
    layer = c.resolve(ref, AMD64).manifest.layers[0]
    before = len(tokens.requests)
    c2 = client(token_registry.creds)
    with ThreadPoolExecutor(max_workers=6) as pool:
        digests = list(pool.map(lambda _: sha256_of(c2.fetch_blob(ref, layer)), range(6)))
    assert digests == [layer.digest] * 6
    assert len(tokens.requests) - before == 1


# ------------------------------------------------------------------ scripted servers

class Scripted:
    """A tiny HTTP server on a loopback address; `handler(req)` returns (status, headers, body)."""

    def __init__(self, handler, host="127.0.0.1"):
        self.handler = handler
        self.seen: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                req = {"path": self.path, "headers": dict(self.headers)}
                outer.seen.append(req)
                status, headers, body = outer.handler(req)
                self.send_response(status)
                for k, v in headers.items():
                    if v is not None:
                        self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if headers.get("Connection") == "close":
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # clients hanging up early is part of these tests

        self.server = Server((host, 0), H)
        self.addr = f"{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    made = []

    def make(handler, host="127.0.0.1"):
        made.append(Scripted(handler, host))
        return made[-1]

    yield make
    for s in made:
        s.close()


SCHEMA1 = json.dumps({"schemaVersion": 1, "name": "x/old", "tag": "latest", "architecture": "amd64",
                      "fsLayers": [{"blobSum": "sha256:" + "a" * 64}],
                      "history": [{"v1Compatibility": "{}"}]}).encode()


def test_schema1_is_refused(scripted):
    def handler(req):
        if req["path"] == "/v2/":
            return 200, {}, b"{}"
        return 200, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, SCHEMA1

    server = scripted(handler)
    with pytest.raises(UnsupportedManifest) as exc:
        client().resolve(parse_reference(f"{server.addr}/x/old"), AMD64)
    assert "schema1" in exc.value.message
    assert "Accept" in server.seen[-1]["headers"]
    for mt in (MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_OCI_INDEX):
        assert mt in server.seen[-1]["headers"]["Accept"]


BLOB = b"layer bytes " * 5000
BLOB_DESC = Descriptor("application/vnd.oci.image.layer.v1.tar", sha256_of(BLOB), len(BLOB))


def test_credentials_never_follow_a_redirect_to_another_host(scripted):
    storage = scripted(lambda req: (200, {"Content-Type": "application/octet-stream"}, BLOB), host="127.0.0.2")

    def registry_handler(req):
        if "Authorization" not in req["headers"]:
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
        if req["path"] == "/v2/":
            return 200, {}, b"{}"
        if req["path"].startswith("/v2/x/app/blobs/"):
            return 307, {"Location": "/same-origin-hop"}, b""
        if req["path"] == "/same-origin-hop":
            return 307, {"Location": f"http://{storage.addr}/bucket/blob?sig=1"}, b""
        return 404, {}, b""

    reg = scripted(registry_handler)
    data = client(("alice", "pw")).fetch_blob(parse_reference(f"{reg.addr}/x/app"), BLOB_DESC)
    assert data == BLOB
    hop = [r for r in reg.seen if r["path"] == "/same-origin-hop"]
    assert hop and hop[0]["headers"]["Authorization"].startswith("Basic "), "same origin keeps credentials"
    assert storage.seen and all("Authorization" not in r["headers"] for r in storage.seen)


def test_a_redirect_to_another_port_of_the_same_host_is_another_origin(scripted):
    storage = scripted(lambda req: (200, {}, BLOB))

    def registry_handler(req):
        if req["path"] == "/v2/":
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
        return 302, {"Location": f"http://{storage.addr}/blob"}, b""

    reg = scripted(registry_handler)
    assert client(("alice", "pw")).fetch_blob(parse_reference(f"{reg.addr}/x/app"), BLOB_DESC) == BLOB
    assert "Authorization" not in storage.seen[0]["headers"]


def test_retries_5xx_and_honours_retry_after(scripted):
    calls = {"n": 0}

    def handler(req):
        if req["path"] == "/v2/":
            return 200, {}, b"{}"
        calls["n"] += 1
        if calls["n"] == 1:
            return 503, {}, b"busy"
        if calls["n"] == 2:
            return 429, {"Retry-After": "0"}, b"slow down"
        return 200, {}, BLOB

    server = scripted(handler)
    assert client().fetch_blob(parse_reference(f"{server.addr}/x/app"), BLOB_DESC) == BLOB
    assert calls["n"] == 3


def test_long_retry_after_is_reported_not_slept(scripted):
    server = scripted(lambda req: (200, {}, b"{}") if req["path"] == "/v2/"
                      else (429, {"Retry-After": "3600"}, b""))
    with pytest.raises(RegistryError) as exc:
        client().fetch_blob(parse_reference(f"{server.addr}/x/app"), BLOB_DESC)
    assert "retry after 3600s" in exc.value.message


def test_persistent_5xx_gives_up_with_the_registry_message(scripted):
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "disk on fire"}]}).encode()
    server = scripted(lambda req: (200, {}, b"{}") if req["path"] == "/v2/" else (500, {}, body))
    with pytest.raises(RegistryError) as exc:
        client(retries=2).fetch_blob(parse_reference(f"{server.addr}/x/app"), BLOB_DESC)
    assert "disk on fire" in exc.value.message and "tried 3 times" in exc.value.message


def test_a_dropped_connection_resumes_with_range(scripted):
    state = {"first": True}

    def handler(req):
        if req["path"] == "/v2/":
            return 200, {}, b"{}"
        rng = req["headers"].get("Range")
        if state["first"]:
            state["first"] = False
            # announce the whole blob, send half, hang up
            return 200, {"Content-Length": str(len(BLOB)), "Connection": "close"}, BLOB[: len(BLOB) // 2]
        start = int(rng.split("=")[1].rstrip("-"))
        return 206, {"Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"}, BLOB[start:]

    server = scripted(handler)
    assert client().fetch_blob(parse_reference(f"{server.addr}/x/app"), BLOB_DESC) == BLOB
    ranges = [r["headers"].get("Range") for r in server.seen if r["path"] != "/v2/"]
    assert ranges == [None, f"bytes={len(BLOB) // 2}-"]


@pytest.mark.parametrize("headers,phrase", [
    ({}, f"is {len(BLOB) + 5} bytes"),                                # announced by Content-Length
    ({"Content-Length": None, "Connection": "close"}, "larger than"),  # only seen by reading on
])
def test_a_blob_longer_than_its_descriptor_is_refused(scripted, headers, phrase):
    server = scripted(lambda req: (200, {}, b"{}") if req["path"] == "/v2/" else (200, headers, BLOB + b"extra"))
    with pytest.raises(IntegrityError) as exc:
        client().fetch_blob(parse_reference(f"{server.addr}/x/app"), BLOB_DESC)
    assert phrase in exc.value.message


def test_manifest_not_matching_the_announced_digest(scripted, busybox_ref):
    raw = json.dumps({"schemaVersion": 2, "mediaType": MT_DOCKER_MANIFEST,
                      "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                 "digest": "sha256:" + "a" * 64, "size": 1}, "layers": []}).encode()

    def handler(req):
        if req["path"] == "/v2/":
            return 200, {}, b"{}"
        return 200, {"Content-Type": MT_DOCKER_MANIFEST, "Docker-Content-Digest": "sha256:" + "b" * 64}, raw

    server = scripted(handler)
    c = client()
    with pytest.raises(IntegrityError):
        c.resolve(parse_reference(f"{server.addr}/x/app:latest"), AMD64)
    with pytest.raises(IntegrityError) as exc:
        c.resolve(parse_reference(f"{server.addr}/x/app@sha256:{'c' * 64}"), AMD64)
    assert "sha256:" + "c" * 64 in exc.value.message


# ------------------------------------------------------------------ where requests go

@pytest.mark.parametrize("domain,insecure,transformation,expected", [
    ("127.0.0.1:5000", (), {}, "http://127.0.0.1:5000"),
    ("127.1.2.3", (), {}, "http://127.1.2.3"),
    ("localhost:5000", (), {}, "http://localhost:5000"),
    ("[::1]:5000", (), {}, "http://[::1]:5000"),
    ("registry.example.com", (), {}, "https://registry.example.com"),
    ("10.1.2.3:5000", (), {}, "https://10.1.2.3:5000"),
    ("10.1.2.3:5000", ("10.1.2.3:5000",), {}, "http://10.1.2.3:5000"),
    ("10.1.2.3:5000", ("10.0.0.0/8",), {}, "http://10.1.2.3:5000"),
    ("reg.lan:5000", ("reg.lan",), {}, "http://reg.lan:5000"),
    ("reg.lan:5000", ("other.lan",), {}, "https://reg.lan:5000"),
    ("docker.io", (), {"docker.io": "registry-1.docker.io"}, "https://registry-1.docker.io"),
    ("ghcr.io", (), {"docker.io": "registry-1.docker.io"}, "https://ghcr.io"),
])
def test_scheme_and_host(domain, insecure, transformation, expected):
    assert RegistryClient(insecure=insecure, transformation=transformation).base_url(domain) == expected


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("10.0.0.1", False), ("128.0.0.1", False), ("example.com", False),
    ("localhost.example.com", False), ("a.localhost", False), ("::2", False),
])
def test_loopback(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.parametrize("header,expected", [
    ('Basic realm="registry"', [("basic", {"realm": "registry"})]),
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
     [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"})]),
    ('Bearer realm="https://a/token",service="s",scope="repository:x/y:pull,push",error="insufficient_scope"',
     [("bearer", {"realm": "https://a/token", "service": "s", "scope": "repository:x/y:pull,push",
                  "error": "insufficient_scope"})]),
    ('Bearer realm="r", service="s"', [("bearer", {"realm": "r", "service": "s"})]),
    ('Basic realm="a\\"b"', [("basic", {"realm": 'a"b'})]),
    ('Basic realm="x", Bearer realm="y",service="z"',
     [("basic", {"realm": "x"}), ("bearer", {"realm": "y", "service": "z"})]),
    ("", []),
])
def test_parse_challenges(header, expected):
    assert [(c.scheme, c.params) for c in parse_challenges(header)] == expected


def test_credentials_never_go_to_a_plain_http_token_server_off_loopback(scripted):
    # the realm is never contacted: the client refuses before sending anything
    server = scripted(lambda req: (401, {"WWW-Authenticate": 'Bearer realm="http://192.0.2.1/token",service="s"'},
                                   b""))
    with pytest.raises(AuthError) as exc:
        client(("alice", "pw")).fetch_blob(parse_reference(f"{server.addr}/x/app"), BLOB_DESC)
    assert "plain HTTP" in exc.value.message


def test_image_builder_layers_carry_whiteouts(image_builder, busybox_ref):
    """The fixture other suites build whiteout and busybox tests on really makes those entries."""
    import io
    import tarfile

    from tests.fixtures.registry import OPAQUE, WHITEOUT

    def delete_ls(rootfs):
        (rootfs / "bin" / "ls").unlink()

    ref_text = image_builder("test/whiteouts", [{"etc/old": "x", "var/cache/a": "a"},
                                                {"etc/old": WHITEOUT, "var/cache": OPAQUE}, delete_ls],
                             base="busybox")
    c = client()
    ref = parse_reference(ref_text)
    layers = c.resolve(ref, AMD64).manifest.layers

    def names(layer):
        with tarfile.open(fileobj=io.BytesIO(c.fetch_blob(ref, layer))) as tar:
            return {m.name.lstrip("./"): m for m in tar.getmembers()}

    base = names(layers[0])
    assert base["bin/busybox"].isreg() and base["bin/sh"].issym() and base["bin/sh"].linkname == "busybox"
    assert base["tmp"].mode & 0o7777 == 0o1777 and "etc/passwd" in base
    assert {"etc/.wh.old", "var/cache/.wh..wh..opq"} <= set(names(layers[2]))
    assert "bin/.wh.ls" in names(layers[3])
