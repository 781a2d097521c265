"""Computing content digests: of bytes, of a stream (a hasher for a digest to verify), and the
OCI chain ids of layer stacks. Pure. (Digests as strings are core.digest's.)"""

from __future__ import annotations

import hashlib

from reconciler.core.digest import ALGORITHMS, validate_digest
from reconciler.core.errors import InvalidArgument


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
