"""A blob streamed from the registry, hashed as it goes, resumed with a Range request when a
connection drops, and refused when its size or digest is not what its descriptor says."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from reconciler.adapters.registry.transport import reason
from reconciler.core.errors import IntegrityError
from reconciler.core.hashing import hasher_for
from reconciler.core.manifest import Descriptor
from reconciler.core.reference import Reference

if TYPE_CHECKING:
    from reconciler.adapters.registry.client import RegistryClient

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class BlobReader:
    """Streams one blob, hashing as it goes; resumes with a Range request when a connection drops."""

    def __init__(self, client: RegistryClient, ref: Reference, descriptor: Descriptor):
        self.client, self.ref, self.descriptor = client, ref, descriptor
        self.size = descriptor.size
        self.bytes_read = 0
        self._hash = hasher_for(descriptor.digest)
        self._verified = False
        self._resumes = 0
        self._resp = client._open_blob_response(ref, descriptor, 0)

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes (all that is left when n < 0); b"" once the verified blob is exhausted."""
        if self.bytes_read >= self.size:
            self._verify()
            return b""
        if n is None or n < 0:
            parts = []
            while self.bytes_read < self.size:
                parts.append(self._read_some(self.size - self.bytes_read))
            return b"".join(parts)
        return self._read_some(min(n, self.size - self.bytes_read)) if n else b""

    def _read_some(self, want: int) -> bytes:
        """At least one byte and at most `want`, hashed; resumes the download if the stream broke."""
        while True:
            error: Exception | None = None
            try:
                chunk = self._resp.raw.read(min(want, CHUNK), decode_content=False)
            except Exception as e:  # urllib3 ProtocolError / ReadTimeoutError, OSError: resume below
                chunk, error = b"", e
            if chunk:
                self._hash.update(chunk)
                self.bytes_read += len(chunk)
                if self.bytes_read >= self.size:
                    self._verify()
                return chunk
            self._resume(error)

    def _resume(self, error: BaseException | None) -> None:
        """The stream ended early: ask again from where we are (Range), a few times."""
        if self._resumes >= self.client.retries:
            raise IntegrityError(
                f"blob {self.descriptor.digest} of {self.ref.familiar_name()} ended after {self.bytes_read} "
                f"of {self.size} bytes" + (f" ({reason(error)})" if error else ""))
        self._resumes += 1
        self._resp.close()
        self.client._sleep(self._resumes - 1)
        resp = self.client._open_blob_response(self.ref, self.descriptor, self.bytes_read)
        if resp.status_code == 200 and self.bytes_read:
            skip = self.bytes_read  # the server ignored Range: skip what we already have
            while skip:
                chunk = resp.raw.read(min(skip, CHUNK), decode_content=False)
                if not chunk:
                    break
                skip -= len(chunk)
        self._resp = resp

    def _verify(self) -> None:
        if self._verified:
            return
        actual = f"{self.descriptor.digest.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if actual != self.descriptor.digest:
            raise IntegrityError(f"blob of {self.ref.familiar_name()} does not match its digest: "
                                 f"expected {self.descriptor.digest}, got {actual}",
                                 hint="the registry's copy is corrupt or was altered in transit")
        try:        # anything past the declared size is a lie too
            extra = self._resp.raw.read(1, decode_content=False)
        except Exception as e:      # urllib3's errors: the stream ended badly after the blob
            log.debug("reading past blob %s: %s", self.descriptor.digest, e)
            extra = b""
        if extra:
            raise IntegrityError(f"blob {self.descriptor.digest} of {self.ref.familiar_name()} is larger "
                                     f"than the {self.size} bytes its descriptor declares")
        self._verified = True

    def finish(self) -> None:
        """Read and check whatever the caller left unread."""
        while not self._verified:
            self.read(CHUNK)

    def close(self) -> None:
        self._resp.close()

    @property
    def verified(self) -> bool:
        return self._verified
