"""Image layers on disk: the store (store.py), its records (records.py), and extraction
(extract.py over pipeline.py and archive_ffi.py, imported only by a pull: libarchive is heavy)."""

from reconciler.adapters.layerstore.records import LayerRecord, StagedLayer
from reconciler.adapters.layerstore.store import LayerStore

__all__ = ["LayerRecord", "LayerStore", "StagedLayer"]
