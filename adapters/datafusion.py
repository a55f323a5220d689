"""DataFusion: register a cache as an in-memory table over its zero-copy batches.

:func:`register` reads the whole cache once through one reader and hands its
batches to ``SessionContext.register_record_batches``. DataFusion imports them
through the Arrow C data interface without copying, so in disk mode the table's
columns stay views of the cache's memory-mapped file. The table can be queried
by any number of ``ctx.sql(...)`` calls, self-joins included; every scan reads
the same batches.

Pushdown: DataFusion pushes the projection into the scan, so a query reads
only the columns it names. The Python API offers filter pushdown only into a
``pyarrow.dataset.Dataset`` (``register_dataset``/``register_table``), which
scans through Python callbacks; here DataFusion evaluates the filter on the
predicate's columns right above the scan and takes the other columns only for
the rows that pass. Measured on a disk-mode cache, ``SELECT c1 ... WHERE key <
10`` touched all of ``key``'s pages and none of the unmatched pages of any
other column, as a pushed-down filter would.

Why this registration: it is the fastest of DataFusion's ways to take
batches (``register_table`` of a ``ctx.from_arrow`` view, ``register_dataset``
of :func:`batchcorder.dataset`, ``register_arrow`` of a disk-mode cache file);
a registration streaming the upstream lazily is not possible, since
DataFusion's Python API has no scan that calls back into Python at execution
time other than a pyarrow dataset's, and DataFusion drains that while
planning.

For selective filters, :func:`dataset` makes a dataset DataFusion pushes its
filters into (``ctx.register_dataset(name, dataset(cache))``): batch
statistics skip the batches a filter excludes, so a filter keeping 1% of a
time-ordered table runs several times faster than over the in-memory table.
It is not the default: DataFusion then answers ``count(*)`` by scanning
instead of from the in-memory table's row count, and takes every batch
through a Python call, so full scans get slower. The measurements are in the
project's ``docs/benchmarks.md``.

Readers and ingestion
---------------------
- :func:`register` and :func:`dataset` consume one cache reader and ingest
  the whole upstream, at registration; queries consume no reader.
- An upstream failure therefore raises from :func:`register`, with the
  upstream's own exception and message, before any ``collect()``.
- The registered batches are pinned: free in disk mode (views of the mapped
  file); with a bounded hot layer the batches hot at registration stay in RAM
  until the table is deregistered.
- Registering a name again replaces the table (as DuckDB's ``con.register``
  and Polars' ``SQLContext.register`` do), once the new cache has been read.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

import pyarrow as pa

from batchcorder._adapter_kit import closed_dataset, lifetime_of, require_engine

if TYPE_CHECKING:
    import datafusion

    from batchcorder import Replayable
    from batchcorder._adapter_kit import CacheDataset
    from batchcorder.adapters._datafusion_dataset import DataFusionDataset

__all__ = ["dataset", "register"]


def __dir__() -> list[str]:
    return list(__all__)


def dataset(cache: Replayable) -> DataFusionDataset | CacheDataset:
    """A pyarrow dataset over every batch of ``cache``, which DataFusion scans skipping batches.

    Register it with ``ctx.register_dataset(name, dataset(cache))``.
    DataFusion pushes the filters it can express into the scan and reads the
    dataset as one partition per core, each a run of consecutive batches:
    batches a filter excludes (told by batch statistics, which the cache
    computes the first time a filter reads a column, and keeps) are skipped,
    those it keeps whole are streamed as they are, the others filtered in
    Arrow. Reads the whole cache through one reader, ingesting the rest of the
    upstream. No buffer is copied.

    DataFusion filters again the rows a dataset returns, but cannot bring
    back a row the dataset dropped, so the dataset gives its filters
    DataFusion's meaning: NaN above every number and equal to itself, ``IN``
    null for a null (pyarrow's meaning, which :func:`batchcorder.dataset`
    keeps, takes NaN as unordered and ``is_in`` of a null as false).

    Parameters
    ----------
    cache : Replayable
        The cache to read.

    Returns
    -------
    pyarrow.dataset.InMemoryDataset
        With the cache's schema; its ``get_fragments()`` returns the parts
        DataFusion scans (not pyarrow fragments). For a cache with a column
        pyarrow cannot filter (string or binary views), :func:`batchcorder.dataset`
        instead, which applies the filters with pyarrow's own scanner.

    Raises
    ------
    TypeError
        If ``cache`` is not a ``StreamCache`` or a cast view of one.

    Examples
    --------
    >>> import datafusion
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"k": range(100)}).to_reader(max_chunksize=10))
    >>> ctx = datafusion.SessionContext()
    >>> ctx.register_dataset("t", dataset(cache))
    >>> ctx.sql("SELECT count(*) AS n FROM t WHERE k >= 95").to_pydict()
    {'n': [5]}
    """
    from batchcorder._adapter_kit import CacheDataset, arrow_can_filter, dataset_contents
    from batchcorder.adapters._datafusion_dataset import DataFusionDataset

    batches, schema, statistics = dataset_contents(cache, "batchcorder.adapters.datafusion.dataset")
    if not arrow_can_filter(schema) and any(batch.num_rows for batch in batches):
        # The filters DataFusion pushes down could not be applied here: the
        # dataset is pyarrow's own (batchcorder.dataset). An empty cache has
        # nothing to filter, and DataFusion needs its one empty part.
        return CacheDataset(
            batches, schema, statistics, semantics="datafusion", lifetime=lifetime_of(cache)
        )
    return DataFusionDataset(
        batches, schema, statistics, _cores(), semantics="datafusion", lifetime=lifetime_of(cache)
    )


def _cores() -> int:
    """The cores this process may run on: DataFusion's default number of partitions."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def register(
    ctx: datafusion.SessionContext,
    name: str,
    cache: Replayable,
) -> datafusion.DataFrame:
    """Register ``cache`` as table ``name`` of ``ctx``; read the whole cache now.

    A table already registered as ``name`` is replaced, after ``cache`` has
    been read: if reading fails, the old table stays.

    Parameters
    ----------
    ctx : datafusion.SessionContext
        The session to register with.
    name : str
        The table name SQL statements use.
    cache : Replayable
        The cache to read, through one reader; the rest of the upstream is
        ingested now.

    Returns
    -------
    datafusion.DataFrame
        ``ctx.table(name)``.

    Raises
    ------
    ModuleNotFoundError
        If DataFusion is not installed (``pip install 'batchcorder[datafusion]'``).

    Examples
    --------
    >>> import datafusion
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"k": [1, 2, 3], "v": [10, 20, 30]}))
    >>> ctx = datafusion.SessionContext()
    >>> _ = register(ctx, "t", cache)
    >>> ctx.sql("SELECT sum(v) AS s FROM t WHERE k > 1").to_pydict()
    {'s': [50]}
    >>> ctx.sql("SELECT count(*) AS n FROM t a JOIN t b ON a.k = b.k").to_pydict()
    {'n': [3]}
    >>> _ = register(ctx, "t", StreamCache(pa.table({"k": [7]})))  # replaces t
    >>> ctx.sql("SELECT k FROM t").to_pydict()
    {'k': [7]}
    """
    require_engine("datafusion", "batchcorder.adapters.datafusion.register")
    from batchcorder._adapter_kit import check_cache, snapshot

    check_cache(cache, "batchcorder.adapters.datafusion.register")

    # Empty batches hold no row, and DataFusion's string functions panic on an
    # empty string array at a non-zero offset (an empty slice of a batch).
    batches = [batch for batch in snapshot(cache) if batch.num_rows]
    if not batches:
        # DataFusion infers the table schema from the batches; an empty batch
        # gives an empty cache its columns.
        batches = [pa.RecordBatch.from_pylist([], schema=cache.schema)]
    # DataFusion refuses a name it has ("table t already exists"); replace it,
    # as the other engines do.
    ctx.deregister_table(name)
    ctx.register_record_batches(name, [batches])
    # DataFusion's in-memory table reads its batches without asking the
    # cache: close() replaces it with one whose every scan says the cache
    # is closed, and so lets the batches (and the file's map) go.
    lifetime_of(cache).on_close(
        ctx, functools.partial(_end_table, name=name, first=batches[0], schema=cache.schema)
    )
    return ctx.table(name)


def _end_table(
    ctx: datafusion.SessionContext, *, name: str, first: pa.RecordBatch, schema: pa.Schema
) -> None:
    """Replace table ``name`` of ``ctx`` by a closed one, if it still holds the cache's batches.

    A table registered under the same name since (by :func:`register` or by
    the user) is not ours to replace: its first batch is not the cache's.
    """
    if not ctx.table_exist(name) or not _is_first_batch(ctx, name, first):
        return
    ctx.deregister_table(name)
    ctx.register_dataset(name, closed_dataset(schema))


def _is_first_batch(ctx: datafusion.SessionContext, name: str, first: pa.RecordBatch) -> bool:
    """Whether scanning ``name`` starts with ``first``'s own buffers (no copy: an in-memory table)."""
    try:
        scanned = ctx.table(name).limit(1).collect()
    except Exception:
        return False
    if not scanned or not first.num_columns:
        return bool(not scanned and first.num_rows == 0)
    return _buffer_addresses(scanned[0]) == _buffer_addresses(first)


def _buffer_addresses(batch: pa.RecordBatch) -> list[int]:
    return [
        buffer.address
        for column in batch.columns
        for buffer in column.buffers()
        if buffer is not None
    ]
