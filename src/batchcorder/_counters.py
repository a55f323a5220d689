"""The counters of a cache (``CacheStats``): what it holds and has done, at one instant.

Not to be confused with batch statistics (bounds, nulls, NaN of each batch),
which live in :mod:`batchcorder._scan.statistics`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheStats"]


@dataclass(frozen=True)
class CacheStats:
    """Counters of one :class:`~batchcorder.StreamCache`, taken at one instant.

    Attributes
    ----------
    ingested_batches : int
        Batches pulled from the upstream so far (each exactly once).
    ingested_rows : int
        Rows in those batches.
    ingested_bytes : int
        Logical size of those batches (the sum of ``RecordBatch.nbytes``).
    memory_batches : int
        Batches whose data the cache holds in RAM.
    memory_bytes : int
        Bytes of the distinct Arrow buffers behind those batches; a buffer
        shared by several batches (slices of one table) counts once.
    disk_batches : int
        Batches written to the cache file.
    disk_bytes : int
        Size of the cache file in bytes.
    readers_created : int
        Readers handed out so far (including one per ``__arrow_c_stream__``).
    evicted_batches : int
        Batches dropped because every reader had moved past them
        (``max_readers``).
    upstream_exhausted : bool
        Whether the upstream has reported its end.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}))
    >>> cache.ingest_all()
    1
    >>> stats = cache.stats
    >>> (stats.ingested_batches, stats.ingested_rows, stats.upstream_exhausted)
    (1, 3, True)
    """

    ingested_batches: int
    ingested_rows: int
    ingested_bytes: int
    memory_batches: int
    memory_bytes: int
    disk_batches: int
    disk_bytes: int
    readers_created: int
    evicted_batches: int
    upstream_exhausted: bool
