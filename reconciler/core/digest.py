"""Content digests ("sha256:<hex>") as strings: their grammar, algorithms and hex part. Pure.

Computing digests of content (and chain ids) is core.hashing's: this module does not load
hashlib (OpenSSL), which the commands that only read records (`ps`) do not need."""

from __future__ import annotations

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
