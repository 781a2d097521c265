"""Registry protocol v2 client (requests): manifests and blobs, verified, with auth and retries.

    transport.py   sessions per thread, retries, redirects followed by hand, http or https
    auth.py        the token spec: challenges, Basic credentials, Bearer tokens per scope
    client.py      RegistryClient: resolve a reference to a platform's manifest, fetch blobs
    blobs.py       BlobReader: a blob streamed, hashed, resumed and verified
"""

from reconciler.adapters.registry.auth import Challenge, parse_challenges
from reconciler.adapters.registry.blobs import BlobReader
from reconciler.adapters.registry.client import RegistryClient, ResolvedImage
from reconciler.adapters.registry.transport import is_loopback

__all__ = ["BlobReader", "Challenge", "RegistryClient", "ResolvedImage", "is_loopback",
           "parse_challenges"]
