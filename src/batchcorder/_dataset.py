"""``batchcorder.dataset``: a cache as a ``pyarrow.dataset.Dataset`` that engines scan with pushdown.

Needs only pyarrow. A dataset is how pyarrow-based scanners take a source with
projection and filter pushdown: ``polars.scan_pyarrow_dataset``, DuckDB
(``con.register`` or a replacement scan) and DataFusion's
``SessionContext.register_dataset`` all accept one, where a cache itself is
only an Arrow stream. The dataset skips, by the cache's batch statistics, the
batches a pushed-down filter excludes (:mod:`batchcorder._cache_dataset`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from batchcorder._cache_dataset import CacheDataset
    from batchcorder._protocol import Replayable
    from batchcorder._scan.statistics import BatchStatistics

__all__ = ["check_cache", "dataset", "dataset_contents", "snapshot", "statistics_of"]


def check_cache(cache: Any, function: str) -> None:
    """Raise ``TypeError`` unless ``cache`` is a ``StreamCache`` or a cast view of one.

    Parameters
    ----------
    cache : object
        The argument to check.
    function : str
        The public function it was passed to, as the message names it.

    Examples
    --------
    >>> import pyarrow as pa
    >>> check_cache(pa.table({"x": [1]}), "batchcorder.dataset")
    Traceback (most recent call last):
    ...
    TypeError: batchcorder.dataset: cache must be a batchcorder.StreamCache (or its cast view), got Table; wrap the stream with StreamCache(...) first
    """
    from batchcorder._protocol import Replayable

    if not isinstance(cache, Replayable):
        raise TypeError(
            f"{function}: cache must be a batchcorder.StreamCache (or its cast view), got "
            f"{type(cache).__name__}; wrap the stream with StreamCache(...) first"
        )


def snapshot(cache: Replayable) -> list[pa.RecordBatch]:
    """Every batch of ``cache``, read through one reader, which ingests the rest of the upstream.

    The batches are the cache's own: no buffer is copied, and in disk mode they
    stay views of the memory-mapped cache file, so holding them costs address
    space, not RAM. An upstream failure propagates with its own message.

    Parameters
    ----------
    cache : Replayable
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
    # Ingest first: the reader that pulls a batch from the upstream gets the
    # upstream's own (heap) batch, while a reader over an ingested disk-mode
    # cache gets views of the cache file.
    cache.ingest_all()
    with cache.reader() as reader:
        return list(reader)


def statistics_of(cache: Replayable) -> BatchStatistics:
    """Where the statistics of the batches ``cache`` replays are kept.

    A :class:`~batchcorder.StreamCache` keeps its own, shared by every
    dataset made of it. A cast view replays other values than the cache
    holds: it keeps statistics of its own.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1]}))
    >>> statistics_of(cache) is cache.statistics
    True
    >>> statistics_of(cache.cast(pa.schema([("x", pa.float64())]))) is cache.statistics
    False
    """
    return cache.statistics


def dataset(cache: Replayable, *, semantics: str = "pyarrow") -> CacheDataset:
    """A ``pyarrow.dataset.Dataset`` over every batch of ``cache``, for scans with pushdown.

    Reads the whole cache now through one reader, ingesting the rest of the
    upstream, and wraps the cache's own batches without copying a buffer (in
    disk mode they stay views of the cache file). The dataset can be scanned
    any number of times and takes no further reader: hand it to
    ``polars.scan_pyarrow_dataset``, to DuckDB (``con.register(name, data)``
    or a replacement scan) or to DataFusion's ``register_dataset``, which push
    column selection and filters into every scan. Only pyarrow is imported.

    A scan with a filter skips the batches the filter excludes, told from
    per-batch statistics (bounds and null counts of the filter's columns),
    which the cache computes the first time a filter reads a column and
    keeps: the result is the same, the work is less when the filter is
    selective on a column whose values cluster by batch (a time column, an
    id). Without a filter every batch is scanned.

    The dataset holds the batches it read: free in disk mode, but with a
    bounded hot layer the batches hot at this call stay in RAM as long as the
    dataset lives. Batches ingested later are not in it; call again for a
    fresh one.

    Polars and DuckDB do not filter again the rows a dataset returns for a
    filter they push into it (DataFusion does, but cannot bring back a row
    the dataset dropped): the dataset's answer is the query's. By default
    filters mean what they mean to pyarrow (NaN equal to nothing, neither
    below nor above a number; ``is_in`` false for a null), so a scan answers
    exactly as a dataset of the plain table. ``semantics="polars"`` (for
    ``pl.scan_pyarrow_dataset``), ``"duckdb"`` or ``"datafusion"`` answers as
    that engine does over a table: NaN above every number and equal to
    itself, ``is_in`` null for a null, and the engine's ``-0.0`` in value sets.

    Parameters
    ----------
    cache : Replayable
        The cache to read.
    semantics : {"pyarrow", "polars", "duckdb", "datafusion"}, default "pyarrow"
        Whose meaning filters have (above).

    Returns
    -------
    pyarrow.dataset.InMemoryDataset
        With the cache's schema, also when the cache holds no batch; its
        ``scanner()`` is pyarrow's, over the batches a filter may keep.

    Raises
    ------
    TypeError
        If ``cache`` is not a ``StreamCache`` or a cast view of one.
    ValueError
        If ``semantics`` is none of those.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> import batchcorder
    >>> cache = batchcorder.StreamCache(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    >>> data = batchcorder.dataset(cache)
    >>> data.to_table(columns=["v"], filter=ds.field("k") >= 2).to_pydict()
    {'v': ['b', 'c']}
    >>> data.count_rows()
    3
    >>> floats = batchcorder.StreamCache(pa.table({"f": [float("nan"), 1.0]}))
    >>> above = ds.field("f") > 0
    >>> batchcorder.dataset(floats).count_rows(filter=above)
    1
    >>> batchcorder.dataset(floats, semantics="polars").count_rows(filter=above)
    2
    """
    choices = ("pyarrow", "polars", "duckdb", "datafusion")
    if semantics not in choices:
        raise ValueError(
            f"batchcorder.dataset: semantics must be one of {choices}, got {semantics!r}"
        )
    contents = dataset_contents(cache, "batchcorder.dataset")
    from batchcorder._cache_dataset import CacheDataset
    from batchcorder._lifetime import lifetime_of

    return CacheDataset(*contents, semantics=semantics, lifetime=lifetime_of(cache))


def dataset_contents(
    cache: Replayable, function: str
) -> tuple[list[pa.RecordBatch], pa.Schema, BatchStatistics]:
    """What a dataset over every batch of ``cache`` is made of, read now through one reader.

    Checks ``cache`` (:func:`check_cache`), then reads it (:func:`snapshot`).

    Parameters
    ----------
    cache : Replayable
        The cache to read; the rest of its upstream is ingested now.
    function : str
        The public function ``cache`` was passed to, as an error message names it.

    Returns
    -------
    tuple of (list of pyarrow.RecordBatch, pyarrow.Schema, BatchStatistics)
        The batches, the cache's schema and where the batches' statistics are
        kept (:func:`statistics_of`): the arguments of the datasets of
        :mod:`batchcorder._cache_dataset`.

    Raises
    ------
    TypeError
        If ``cache`` is not a cache, before anything is read.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}).to_reader(max_chunksize=2))
    >>> batches, schema, statistics = dataset_contents(cache, "an example")
    >>> [batch.num_rows for batch in batches], schema.names, statistics is cache.statistics
    ([2, 1], ['x'], True)
    >>> dataset_contents([1, 2, 3], "an example")
    Traceback (most recent call last):
    ...
    TypeError: an example: cache must be a batchcorder.StreamCache (or its cast view), got list; wrap the stream with StreamCache(...) first
    """
    check_cache(cache, function)
    return snapshot(cache), cache.schema, statistics_of(cache)
