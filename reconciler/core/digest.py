"""Content digests ("sha256:<hex>") and the OCI chain ids of layer stacks. Pure."""

from __future__ import annotations

import hashlib
import re

from reconciler.core.errors import InvalidArgument

# The algorithms the OCI image spec registers, with the length of their lowercase hex encoding.
ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_GRAMMAR = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX = frozenset("0123456789abcdef")


def validate_digest(value: str, what: str = "digest") -> str:
    """Return value if it is a well-formed digest of a supported algorithm, else raise InvalidArgument."""
    if not isinstance(value, str) or not _GRAMMAR.fullmatch(value):
        raise InvalidArgument(f"{what} {value!r} is not a digest (expected algorithm:hex, "
                              f"e.g. sha256:<64 hex digits>)")
    algorithm, encoded = value.split(":", 1)
    if algorithm not in ALGORITHMS:
        raise InvalidArgument(f"{what} {value!r}: unsupported digest algorithm {algorithm!r} "
                              f"(supported: {', '.join(ALGORITHMS)})")
    expected = ALGORITHMS[algorithm]
    if len(encoded) != expected or not _HEX.issuperset(encoded):
        raise InvalidArgument(f"{what} {value!r}: a {algorithm} digest is {expected} lowercase hex digits")
    return value


def is_digest(value: str) -> bool:
    try:
        validate_digest(value)
    except InvalidArgument:
        return False
    return True


def digest_hex(digest: str) -> str:
    """The encoded part of a digest ("sha256:abc" -> "abc"); a bare hex id is returned as is."""
    _algorithm, colon, encoded = digest.partition(":")
    return encoded if colon else digest


def sha256_digest(digest_or_hex: str) -> str:
    """A digest as "algorithm:hex": a bare hex id (as the seed's records store them) gets "sha256:"."""
    return digest_or_hex if ":" in digest_or_hex else "sha256:" + digest_or_hex


def hasher_for(digest: str):
    """A fresh hashlib object of the digest's algorithm, to verify streamed content against it."""
    return hashlib.new(validate_digest(digest).split(":", 1)[0])


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    if algorithm not in ALGORITHMS:
        raise InvalidArgument(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain ids: chain(L0) = diff(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))."""
    chain: list[str] = []
    for diff_id in diff_ids:
        validate_digest(diff_id, "diff_id")
        chain.append(diff_id if not chain else sha256_of(f"{chain[-1]} {diff_id}".encode()))
    return chain
