"""A layer's record (overlay-layers/<chain-id>.json) and a staged layer waiting to be published."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LayerRecord:
    id: str                         # chain id, "sha256:…"
    parent: str | None              # parent chain id
    diff_digest: str                # diff_id: sha256 of the uncompressed tar
    compressed_digest: str | None
    compressed_size: int | None
    size: int                       # bytes of the uncompressed tar

    def to_json(self) -> dict:
        return {"id": self.id, "parent": self.parent or "", "diff-digest": self.diff_digest,
                "compressed-digest": self.compressed_digest or "",
                "compressed-size": self.compressed_size or 0, "size": self.size}

    @classmethod
    def from_json(cls, d: dict) -> LayerRecord:
        return cls(id=d["id"], parent=d.get("parent") or None, diff_digest=d["diff-digest"],
                   compressed_digest=d.get("compressed-digest") or None,
                   compressed_size=d.get("compressed-size") or None, size=int(d.get("size", 0)))


@dataclass
class StagedLayer:
    """A verified, extracted layer waiting in tmp/ to be published; holds its staging lock
    (lock_fd, -1 once published or discarded)."""
    path: Path                      # tmp/layer-…; the tree is path/diff
    diff_id: str
    size: int
    compressed_digest: str | None
    compressed_size: int | None
    lock_fd: int
