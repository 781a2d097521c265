"""Image references parsed as Docker does (distribution/reference), and digests."""

from __future__ import annotations

import hashlib

import pytest

from reconciler.core.digest import is_digest, validate_digest
from reconciler.core.hashing import chain_ids, digest_of, hasher_for, sha256_of
from reconciler.core.errors import InvalidArgument, InvalidReference
from reconciler.core.reference import Reference, parse_reference

D = "sha256:" + "a" * 64
D2 = "sha256:" + "0123456789abcdef" * 4

# text -> (domain, path, tag, digest)
VALID = [
    ("busybox", ("docker.io", "library/busybox", "latest", None)),
    ("busybox:1.36", ("docker.io", "library/busybox", "1.36", None)),
    ("library/busybox", ("docker.io", "library/busybox", "latest", None)),
    ("docker.io/busybox", ("docker.io", "library/busybox", "latest", None)),
    ("docker.io/library/busybox:musl", ("docker.io", "library/busybox", "musl", None)),
    ("index.docker.io/busybox", ("docker.io", "library/busybox", "latest", None)),
    ("index.docker.io/user/app:v1", ("docker.io", "user/app", "v1", None)),
    ("user/app", ("docker.io", "user/app", "latest", None)),
    ("user/team/app:1", ("docker.io", "user/team/app", "1", None)),
    (f"busybox@{D}", ("docker.io", "library/busybox", None, D)),
    (f"busybox:1.36@{D}", ("docker.io", "library/busybox", "1.36", D)),
    ("localhost/app", ("localhost", "app", "latest", None)),
    ("localhost:5000/app:dev", ("localhost:5000", "app", "dev", None)),
    ("localhost:5000/team/app", ("localhost:5000", "team/app", "latest", None)),
    ("127.0.0.1:5000/test/busybox:latest", ("127.0.0.1:5000", "test/busybox", "latest", None)),
    ("127.0.0.1/app", ("127.0.0.1", "app", "latest", None)),
    ("[::1]:5000/app:v2", ("[::1]:5000", "app", "v2", None)),
    ("[::1]/app", ("[::1]", "app", "latest", None)),
    ("[fe80::1:2]:443/a/b", ("[fe80::1:2]:443", "a/b", "latest", None)),
    ("ghcr.io/owner/app", ("ghcr.io", "owner/app", "latest", None)),
    (f"ghcr.io/owner/app@{D2}", ("ghcr.io", "owner/app", None, D2)),
    ("quay.io/a/b/c/d:tag_1.0-x", ("quay.io", "a/b/c/d", "tag_1.0-x", None)),
    ("registry.example.com:8443/x", ("registry.example.com:8443", "x", "latest", None)),
    ("my-registry.local/x-y", ("my-registry.local", "x-y", "latest", None)),
    # a first component with uppercase letters is a host, as in Docker
    ("Registry/app", ("Registry", "app", "latest", None)),
    # "foo:5000" without a slash is a name with a tag, not a host
    ("foo:5000", ("docker.io", "library/foo", "5000", None)),
    # separators inside path components
    ("a.b/c", ("a.b", "c", "latest", None)),
    ("user/a.b_c__d-e--f", ("docker.io", "user/a.b_c__d-e--f", "latest", None)),
    ("a0/b1", ("docker.io", "a0/b1", "latest", None)),
    ("busybox:_underscore", ("docker.io", "library/busybox", "_underscore", None)),
    ("busybox:UPPER.case-ok", ("docker.io", "library/busybox", "UPPER.case-ok", None)),
    ("busybox:" + "t" * 128, ("docker.io", "library/busybox", "t" * 128, None)),
    (f"localhost:5000/app:v1@{D}", ("localhost:5000", "app", "v1", D)),
    (f"busybox@sha512:{'b' * 128}", ("docker.io", "library/busybox", None, "sha512:" + "b" * 128)),
]


@pytest.mark.parametrize("text,expected", VALID, ids=[t for t, _ in VALID])
def test_valid_references(text, expected):
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == expected


# text -> a phrase the error message must contain
INVALID = [
    ("", "empty"),
    (" busybox", "whitespace"),
    ("busy box", "whitespace"),
    ("Busybox", "must be lowercase"),
    ("user/App", "must be lowercase"),
    ("localhost:5000/App", "must be lowercase"),
    ("busybox:", "nothing follows ':'"),
    ("busybox@", "nothing follows '@'"),
    ("busybox@sha256:abc", "64 lowercase hex"),
    (f"busybox@sha256:{'A' * 64}", "64 lowercase hex"),
    (f"busybox@md5:{'a' * 32}", "unsupported digest algorithm"),
    ("busybox@latest", "not a digest"),
    ("busybox:.dot", "must not start"),
    ("busybox:-dash", "must not start"),
    ("busybox:a/b", "not a valid registry host"),  # Docker reads "busybox:a" as host:port
    ("example.com/app:v/1", "not a valid tag"),
    ("busybox:tag!", "may only contain"),
    ("busybox:" + "t" * 129, "at most 128"),
    ("-app", "may only contain lowercase"),
    ("app-", "may only contain lowercase"),
    ("user/.app", "may only contain lowercase"),
    ("user/a..b", "may only contain lowercase"),
    ("user/a___b", "may only contain lowercase"),
    ("user//app", "empty path component"),
    ("user/app/", "empty path component"),
    ("localhost:5000/", "repository name is empty"),
    ("/app", "empty path component"),
    ("-bad.host/app", "not a valid registry host"),
    ("host_x.com/app", "not a valid registry host"),
    ("[::1/app", "not a valid registry host"),
    ("[zz::1]:5000/app", "not a valid registry host"),
    ("localhost:99999/app", "out of range"),
    ("localhost:port/app", "not a valid registry host"),
    ("a" * 64, "image ID"),
    ("example.com/" + "a" * 250, "at most 255"),
    ("docker.io/" + "/".join(["abcdefghi"] * 25), "at most 255"),
    ("app@sha256:" + "a" * 64 + "@sha256:" + "b" * 64, "not a digest"),
    ("user/app:tag:more", "may only contain lowercase"),
]


@pytest.mark.parametrize("text,phrase", INVALID, ids=[t[:40] or "<empty>" for t, _ in INVALID])
def test_invalid_references(text, phrase):
    with pytest.raises(InvalidReference) as exc:
        parse_reference(text)
    assert phrase in exc.value.message
    assert repr(text) in exc.value.message, "the message names the reference the user gave"
    assert isinstance(exc.value, InvalidArgument)


def test_name_limit_counts_the_canonical_name():
    # 255 characters in all, including "example.com/"
    ok = "example.com/" + "a" * (255 - len("example.com/"))
    assert parse_reference(ok).name == ok
    with pytest.raises(InvalidReference):
        parse_reference(ok + "a")


FORMS = [
    # text -> (str, familiar, name, familiar_name)
    ("busybox", ("docker.io/library/busybox:latest", "busybox:latest", "docker.io/library/busybox", "busybox")),
    ("user/app:1", ("docker.io/user/app:1", "user/app:1", "docker.io/user/app", "user/app")),
    ("library/a/b", ("docker.io/library/a/b:latest", "library/a/b:latest", "docker.io/library/a/b", "library/a/b")),
    ("127.0.0.1:5000/x/y:t", ("127.0.0.1:5000/x/y:t", "127.0.0.1:5000/x/y:t", "127.0.0.1:5000/x/y",
                              "127.0.0.1:5000/x/y")),
    (f"busybox@{D}", (f"docker.io/library/busybox@{D}", f"busybox@{D}", "docker.io/library/busybox", "busybox")),
    (f"busybox:1@{D}", (f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}", "docker.io/library/busybox",
                        "busybox")),
]


@pytest.mark.parametrize("text,expected", FORMS, ids=[t for t, _ in FORMS])
def test_string_forms(text, expected):
    ref = parse_reference(text)
    assert (str(ref), ref.familiar(), ref.name, ref.familiar_name()) == expected
    assert parse_reference(str(ref)) == ref, "the canonical form parses back to the same reference"
    assert parse_reference(ref.familiar()) == ref


@pytest.mark.parametrize("text,target", [
    ("busybox", "latest"), ("busybox:1", "1"), (f"busybox:1@{D}", D), (f"busybox@{D}", D),
])
def test_digest_wins_for_pulling(text, target):
    assert parse_reference(text).pull_target == target


@pytest.mark.parametrize("text,default,expected", [
    ("busybox", "127.0.0.1:5000", ("127.0.0.1:5000", "busybox")),
    ("team/app", "registry.local", ("registry.local", "team/app")),
    ("docker.io/busybox", "registry.local", ("docker.io", "library/busybox")),
    ("other.io/app", "registry.local", ("other.io", "app")),
    ("busybox", "docker.io", ("docker.io", "library/busybox")),
])
def test_default_host(text, default, expected):
    ref = parse_reference(text, default_host=default)
    assert (ref.domain, ref.path) == expected


def test_with_tag_and_digest():
    ref = parse_reference("busybox:1")
    assert ref.with_digest(D) == Reference("docker.io", "library/busybox", None, D)
    assert ref.with_tag("2") == Reference("docker.io", "library/busybox", "2", None)


# ------------------------------------------------------------------ digests

@pytest.mark.parametrize("value", [D, D2, "sha384:" + "c" * 96, "sha512:" + "d" * 128])
def test_valid_digests(value):
    assert validate_digest(value) == value
    assert is_digest(value)


@pytest.mark.parametrize("value,phrase", [
    ("", "not a digest"),
    ("sha256", "not a digest"),
    ("sha256:", "not a digest"),
    (":abc", "not a digest"),
    ("sha256:" + "a" * 63, "64 lowercase hex"),
    ("sha256:" + "a" * 65, "64 lowercase hex"),
    ("sha256:" + "g" * 64, "64 lowercase hex"),
    ("sha256:" + "A" * 64, "64 lowercase hex"),
    ("sha512:" + "a" * 64, "128 lowercase hex"),
    ("md5:" + "a" * 32, "unsupported digest algorithm"),
    ("SHA256:" + "a" * 64, "not a digest"),
    (None, "not a digest"),
])
def test_invalid_digests(value, phrase):
    with pytest.raises(InvalidArgument) as exc:
        validate_digest(value)
    assert phrase in exc.value.message
    assert not is_digest(value)


def test_sha256_and_hasher():
    assert sha256_of(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert digest_of(b"x", "sha512") == "sha512:" + hashlib.sha512(b"x").hexdigest()
    h = hasher_for("sha512:" + "d" * 128)
    h.update(b"x")
    assert h.hexdigest() == hashlib.sha512(b"x").hexdigest()


def test_chain_ids_follow_the_oci_formula():
    a, b, c = (sha256_of(x) for x in (b"a", b"b", b"c"))
    ab = sha256_of(f"{a} {b}".encode())
    abc = sha256_of(f"{ab} {c}".encode())
    assert chain_ids([]) == []
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b, c]) == [a, ab, abc]
    # the same layers in another order are another stack
    assert chain_ids([b, a])[-1] != ab


def test_chain_ids_reject_bad_diff_ids():
    with pytest.raises(InvalidArgument, match="diff_id"):
        chain_ids([D, "sha256:nope"])
