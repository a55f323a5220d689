"""Reading a whole cache once into a list of batches, for engines that need every batch up front."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from batchcorder import CastingStreamCache, StreamCache

__all__ = ["snapshot"]


def snapshot(cache: StreamCache | CastingStreamCache) -> list[pa.RecordBatch]:
    """Every batch of ``cache``, read through one reader, which ingests the rest of the upstream.

    The batches are the cache's own: no buffer is copied, and in disk mode they
    stay views of the memory-mapped cache file, so holding them costs address
    space, not RAM. An upstream failure propagates with its own message.

    Parameters
    ----------
    cache : StreamCache or CastingStreamCache
        The cache to read; consumes one of its readers.

    Returns
    -------
    list of pyarrow.RecordBatch
        The batches in upstream order; empty when the upstream had none.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}))
    >>> [batch.num_rows for batch in snapshot(cache)]
    [3]
    """
    ingest_all = getattr(cache, "ingest_all", None)
    if ingest_all is not None:
        # Ingest first: the reader that pulls a batch from the upstream gets
        # the upstream's own (heap) batch, while a reader over an ingested
        # disk-mode cache gets views of the cache file.
        ingest_all()
    with cache.reader() as reader:
        return list(reader)
