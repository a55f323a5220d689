"""DuckDB: query a cache lazily as it is, or register it as a dataset with projection and filter pushdown.

Two paths, both re-scannable by any number of queries:

The lazy path needs no adapter. ``duckdb.sql("SELECT ... FROM cache")`` (a
replacement scan of the Python variable) and ``con.register("t", cache)`` call
``cache.__arrow_c_stream__()``, a fresh reader from batch 0, and read it as the
query runs, so a ``LIMIT`` stops pulling the upstream early. A registered
object is re-scanned: every reference to ``t`` in a plan (self-join, ASOF join,
UNION branches, scalar subqueries) opens its own reader, and the scans run
concurrently. A replacement scan is opened once per query, and DuckDB buffers
it when the plan reads it twice. Either way DuckDB selects the columns it uses
from each batch but cannot push projection or filters into the stream: every
row of every used column reaches DuckDB, so a string column is converted in
full even when a filter on another column keeps ten rows.

:func:`register` (this module) adds the pushdown. It reads the whole cache
once through one reader and registers a pyarrow dataset over the cache's own
batches (zero-copy; in disk mode views of the cache's memory-mapped file).
DuckDB pushes projections and filters into it, and each scan of a plan scans
it afresh, with no materialisation by DuckDB:

- without a filter, the scan streams the projected batches as a plain Arrow
  reader, as DuckDB scans a ``pa.Table``;
- with one, batch statistics (bounds and null counts of the filter's
  columns, computed by the cache the first time a filter reads a column, and
  kept) tell which batches no row of can pass: those are skipped unread, the
  batches every row of passes are streamed as they are, and the others are
  filtered by pyarrow, which copies the passing rows of the projected
  columns only. A selective filter on a column whose values cluster by batch
  (a time column, an id) reads a few batches out of thousands.

Readers and ingestion
---------------------
============================  =======================  ============================
path                          cache readers            ingestion
============================  =======================  ============================
``con.register(n, cache)``    1 per table reference    as far as the query reads
replacement scan              1 per query              as far as the query reads
:func:`register`              1, at registration       all of it, at registration
============================  =======================  ============================

With :func:`register`, queries consume no reader, so a cache with
``max_readers=1`` serves any number of them; on the lazy paths each query
needs the readers above. The dataset pins the batches it read: in disk mode
they are views of the memory-mapped file and cost no RAM (registration ingests
before reading, so it never holds the upstream's own batches); for a cache
with a bounded hot layer, the batches hot at registration stay in memory until
the dataset is dropped.

An upstream failure surfaces from ``fetchall()`` on the lazy paths (and again
from every later query) and from :func:`register` itself on the pushdown path,
with the upstream's message.

Registering a name again replaces the view, as ``con.register`` does. The
measurements are in the project's ``docs/benchmarks.md``.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from batchcorder._adapter_kit import lifetime_of, released_at_close, require_engine

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from batchcorder import Replayable
    from batchcorder.adapters._duckdb_dataset import DuckDBDataset

__all__ = ["dataset", "register"]


def __dir__() -> list[str]:
    return list(__all__)


def dataset(cache: Replayable) -> DuckDBDataset:
    """A pyarrow dataset over every batch of ``cache``, which DuckDB scans with pushdown.

    :func:`batchcorder.dataset`, tuned for DuckDB: its ``scanner()`` returns
    a scan whose ``to_reader()`` (what DuckDB reads) streams the batches with
    no per-batch scan task, skipping those a filter excludes; the scan's
    other methods are a pyarrow ``Scanner``'s. Reads the whole cache through
    one reader, ingesting the rest of the upstream. No buffer is copied.

    DuckDB does not filter again the rows a dataset returns, so the dataset
    gives its filters DuckDB's meaning: NaN above every number and equal to
    itself, ``IN`` null for a null (pyarrow's meaning, which
    :func:`batchcorder.dataset` keeps, takes NaN as unordered and ``is_in``
    of a null as false).

    Parameters
    ----------
    cache : Replayable
        The cache to read.

    Returns
    -------
    pyarrow.dataset.InMemoryDataset
        With the cache's schema, also when the cache holds no batch.

    Raises
    ------
    TypeError
        If ``cache`` is not a ``StreamCache`` or a cast view of one.
    ValueError
        If two columns of the cache share a name: a dataset finds columns by
        name (``register(..., pushdown=False)`` reads such a cache).

    Examples
    --------
    >>> import duckdb
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    >>> data = dataset(cache)
    >>> duckdb.sql("SELECT v FROM data WHERE k >= 2 ORDER BY k").fetchall()
    [('b',), ('c',)]
    """
    from batchcorder._adapter_kit import dataset_contents
    from batchcorder.adapters._duckdb_dataset import DuckDBDataset

    repeated = _repeated_names(cache.schema)
    if repeated:
        raise ValueError(
            f"batchcorder.adapters.duckdb.dataset: the cache has more than one column named "
            f"{', '.join(map(repr, repeated))}; a dataset finds columns by name: register "
            "it with register(con, name, cache, pushdown=False)"
        )
    contents = dataset_contents(cache, "batchcorder.adapters.duckdb.dataset")
    return DuckDBDataset(*contents, semantics="duckdb", lifetime=lifetime_of(cache))


def register(
    con: duckdb.DuckDBPyConnection,
    name: str,
    cache: Replayable,
    *,
    pushdown: bool = True,
) -> duckdb.DuckDBPyRelation:
    """Register ``cache`` as view ``name`` on ``con`` and return its relation.

    A view or an object already registered as ``name`` is replaced.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection to register on.
    name : str
        The view name SQL statements use.
    cache : Replayable
        The cache to read.
    pushdown : bool, default True
        With True, read the whole cache now (one reader) and register a
        dataset DuckDB pushes projections and filters into (see
        :func:`dataset`): scans stream the batches and skip those a filter
        excludes. With False, register the cache itself: nothing is read now,
        and every query streams a new reader. A cache with two columns of one
        name is registered as with False (a dataset finds columns by name).

    Returns
    -------
    duckdb.DuckDBPyRelation
        The relation reading the view.

    Raises
    ------
    ModuleNotFoundError
        If DuckDB is not installed (``pip install 'batchcorder[duckdb]'``).

    Examples
    --------
    >>> import duckdb
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"k": [1, 2, 3], "v": [10, 20, 30]}))
    >>> con = duckdb.connect()
    >>> rel = register(con, "t", cache)
    >>> con.sql("SELECT sum(v) FROM t WHERE k > 1").fetchall()
    [(50,)]
    >>> rel.count("*").fetchall()
    [(3,)]
    >>> _ = register(con, "lazy", cache, pushdown=False)
    >>> con.sql("SELECT count(*) FROM lazy a JOIN lazy b USING (k)").fetchall()
    [(3,)]
    """
    require_engine("duckdb", "batchcorder.adapters.duckdb.register")
    if pushdown and not _repeated_names(cache.schema):
        # DuckDB keeps what it is given: the dataset is let go at close(),
        # so the connection never keeps a closed cache's batches (or map).
        con.register(name, released_at_close(dataset(cache), lifetime_of(cache)))
    else:
        con.register(name, cache)
    return con.view(name)


def _repeated_names(schema: pa.Schema) -> list[str]:
    """The column names ``schema`` holds more than once, in order."""
    counts = collections.Counter(schema.names)
    return [name for name, count in counts.items() if count > 1]
