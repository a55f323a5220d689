"""Where a cache keeps its batches: in RAM, or in a file with a hot layer in RAM."""

from __future__ import annotations

import pyarrow as pa

from batchcorder._options import CacheOptions
from batchcorder._storage.base import BatchStore
from batchcorder._storage.disk import DiskStore
from batchcorder._storage.memory import MemoryStore

__all__ = ["BatchStore", "DiskStore", "MemoryStore", "open_store"]


def open_store(options: CacheOptions, schema: pa.Schema) -> BatchStore:
    """The store ``options`` ask for: a :class:`DiskStore` with a disk path, else a :class:`MemoryStore`.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder._options import validate_options
    >>> options = validate_options(None, None, None, "on_insertion", None)
    >>> type(open_store(options, pa.schema([("x", pa.int64())]))).__name__
    'MemoryStore'
    """
    if options.disk_path is None or options.disk_capacity is None:
        return MemoryStore()
    return DiskStore(
        options.disk_path,
        schema,
        options.memory_capacity,
        options.disk_capacity,
        options.write_policy,
    )
