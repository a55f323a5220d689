"""Polars: a cache as a re-collectable ``LazyFrame`` with projection, predicate and limit pushdown.

:func:`scan` registers the cache with Polars' IO-plugin API
(:func:`polars.io.plugins.register_io_source`). Polars calls the plugin once
per scan node of every ``collect``, passing the projected columns, the
predicate, the row limit and a batch-size hint; the plugin answers with a fresh
cache reader, so the same ``LazyFrame`` can be collected any number of times
and each collect replays the cache from batch 0.

What each scan does with one batch, cheapest first:

1. evaluates the predicate on the predicate's own columns only, and drops the
   batch without touching any other column when no row passes;
2. narrows the batch to the projected columns and filters it in Arrow, so a
   column Polars must copy (strings become string views) is converted for the
   passing rows alone;
3. hands the result to Polars with :func:`polars.from_arrow`, which is
   zero-copy for numeric, temporal and boolean columns without a rechunk;
4. stops reading the cache once it has read ``n_rows`` rows (``head``/``LIMIT``;
   Polars' row limit counts rows of the source, before the predicate).

Readers and ingestion
---------------------
- Registration (:func:`scan`, :func:`register`) reads nothing and creates no
  reader; the schema comes from ``cache.schema``.
- Each scan node of each ``collect`` consumes one cache reader: a plain query
  takes one, a self-join two. The source is declared pure, which lets Polars
  share one scan between identical subplans (a SQL CTE referenced twice takes
  one reader).
- Scans stream: the upstream is pulled only as far as a query reads, so
  ``head(5)`` on a fresh cache ingests one batch, not the whole stream.

An upstream failure raises out of ``collect()``: Polars re-raises the
upstream's own exception, message included, at every collect that reaches it.

Without Polars installed, :func:`scan`, :func:`register` and
:func:`polars_schema` raise ``ModuleNotFoundError`` saying
``pip install 'batchcorder[polars]'``; importing this module needs only
pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from batchcorder._engines import require_engine

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import polars as pl

    from batchcorder import CastingStreamCache, StreamCache

__all__ = ["polars_schema", "register", "scan"]


def __dir__() -> list[str]:
    return list(__all__)


def polars_schema(schema: pa.Schema) -> pl.Schema:
    """The Polars schema a table with Arrow ``schema`` converts to.

    Parameters
    ----------
    schema : pyarrow.Schema
        The Arrow schema, e.g. ``cache.schema``.

    Returns
    -------
    polars.Schema

    Examples
    --------
    >>> import pyarrow as pa
    >>> polars_schema(pa.schema([("x", pa.int32()), ("s", pa.large_string())]))
    Schema([('x', Int32), ('s', String)])
    """
    require_engine("polars", "batchcorder.adapters.polars.polars_schema")
    import polars as pl

    frame = pl.from_arrow(schema.empty_table(), rechunk=False)
    assert isinstance(frame, pl.DataFrame)  # a Table always converts to a DataFrame
    return frame.schema


def scan(cache: StreamCache | CastingStreamCache) -> pl.LazyFrame:
    """A ``LazyFrame`` reading ``cache``, re-collectable, with pushdown of projection and filters.

    Parameters
    ----------
    cache : StreamCache
        The cache to read. Nothing is read until a ``collect``.

    Returns
    -------
    polars.LazyFrame
        Every ``collect`` replays the cache from its first batch, through one
        new reader per scan node.

    Examples
    --------
    >>> import polars as pl
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    >>> lf = scan(cache)
    >>> lf.filter(pl.col("k") > 1).select("v").collect()["v"].to_list()
    ['b', 'c']
    >>> lf.select(pl.col("k").sum()).collect().item()
    6
    """
    require_engine("polars", "batchcorder.adapters.polars.scan")
    from polars.io.plugins import register_io_source

    arrow_schema = cache.schema

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        return _scan_batches(cache, arrow_schema, with_columns, predicate, n_rows, batch_size)

    return register_io_source(
        source,
        schema=polars_schema(arrow_schema),
        # The cache replays identical data, so equal scans may be shared.
        is_pure=True,
        explain_name="batchcorder",
    )


def register(
    ctx: pl.SQLContext, name: str, cache: StreamCache | CastingStreamCache
) -> pl.LazyFrame:
    """Register ``cache`` as table ``name`` of a Polars ``SQLContext``.

    Parameters
    ----------
    ctx : polars.SQLContext
        The SQL context to register with.
    name : str
        The table name SQL statements use.
    cache : StreamCache
        The cache to read; nothing is read at registration.

    Returns
    -------
    polars.LazyFrame
        The frame registered, as :func:`scan` makes it.

    Examples
    --------
    >>> import polars as pl
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"k": [1, 2, 3]}))
    >>> ctx = pl.SQLContext()
    >>> _ = register(ctx, "t", cache)
    >>> ctx.execute("SELECT sum(k) AS s FROM t", eager=True)["s"].item()
    6
    """
    frame = scan(cache)
    ctx.register(name, frame)
    return frame


#: Filter in Arrow when fewer than 1 row in this many passes, else in Polars.
_ARROW_FILTER_BELOW = 8
#: Batches are converted to Polars in groups of about this many rows: each
#: conversion has a fixed cost, and small batches would pay it many times.
_CONVERT_ROWS = 1 << 19


def _grouped(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, lazy: bool
) -> Iterator[pa.RecordBatch | pa.Table]:
    """``batches`` joined (zero-copy) into tables of about ``_CONVERT_ROWS`` rows.

    With ``lazy`` (a row limit), each batch goes alone, so the scan never
    pulls a batch it might not need.
    """
    if lazy:
        yield from batches
        return
    group: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        group.append(batch)
        rows += batch.num_rows
        if rows >= _CONVERT_ROWS:
            yield pa.Table.from_batches(group, schema=schema)
            group, rows = [], 0
    if group:
        yield pa.Table.from_batches(group, schema=schema)


def _scan_batches(
    cache: StreamCache | CastingStreamCache,
    schema: pa.Schema,
    with_columns: list[str] | None,
    predicate: pl.Expr | None,
    n_rows: int | None,
    batch_size: int | None,
) -> Iterator[pl.DataFrame]:
    """The DataFrames of one scan: one new reader, limited, filtered, narrowed and split.

    ``n_rows`` counts rows of the source, before the predicate: Polars pushes a
    row limit into a scan that also filters only for ``head(n).filter(...)``
    (a ``filter(...).head(n)`` keeps its slice above the scan).
    """

    columns = list(schema.names) if with_columns is None else list(with_columns)
    predicate_columns = _predicate_columns(predicate, schema) if predicate is not None else None
    remaining = n_rows
    if remaining is not None and remaining <= 0:
        return
    # Closing the reader (also when Polars drops the generator early) lets a
    # cache with max_readers release the batches it kept for this scan.
    with cache.reader() as reader:
        for batch in _grouped(reader, schema, lazy=remaining is not None):
            # The rows of this batch within the limit (a zero-copy slice).
            rows = batch if remaining is None else batch.slice(0, remaining)
            if remaining is not None:
                remaining -= rows.num_rows
            if predicate is not None:
                frame = _filtered(rows, columns, predicate, predicate_columns)
            else:
                frame = _to_polars(rows.select(columns))
            if frame is not None:
                yield from _split(frame, batch_size)
            if remaining is not None and remaining <= 0:
                # Stop pulling: a LIMIT ingests no further upstream batch.
                return


def _predicate_columns(predicate: pl.Expr, schema: pa.Schema) -> list[str] | None:
    """The distinct columns ``predicate`` reads, in order; None when they cannot be told.

    ``root_names`` lists a column once per use (``x >= 1 & x < 9`` gives ``x``
    twice), and a batch cannot select a column twice.
    """
    try:
        names = list(dict.fromkeys(predicate.meta.root_names()))
    except Exception:
        return None
    known = set(schema.names)
    return names if all(name in known for name in names) else None


def _filtered(
    batch: pa.RecordBatch | pa.Table,
    columns: list[str],
    predicate: pl.Expr,
    predicate_columns: list[str] | None,
) -> pl.DataFrame | None:
    """``batch`` narrowed to ``columns`` and to the rows ``predicate`` keeps; None when it keeps none.

    A row is kept where the predicate is true; false and null drop it, as
    ``LazyFrame.filter`` does.
    """
    import polars as pl

    # Only the predicate's columns are converted to evaluate it (none for a
    # literal predicate: a column-less frame keeps the batch's height); all of
    # them when the predicate's columns are unknown.
    probe = batch if predicate_columns is None else batch.select(predicate_columns)
    mask = _to_polars(probe).select(predicate.alias("mask")).to_series()
    if mask.dtype == pl.Null:
        mask = mask.cast(pl.Boolean)  # a bare null literal
    if mask.len() != batch.num_rows:
        if mask.len() != 1:
            raise ValueError(
                f"the pushed-down predicate {predicate} gave {mask.len()} values "
                f"for a batch of {batch.num_rows} rows"
            )
        # A scalar result (a literal, an expression without columns) holds for every row.
        mask = pl.repeat(mask.item(), batch.num_rows, eager=True, dtype=pl.Boolean)
    kept = int(mask.sum())
    if kept == 0:
        return None
    narrowed = batch.select(columns)
    if kept == batch.num_rows:
        return _to_polars(narrowed)
    if kept * _ARROW_FILTER_BELOW < batch.num_rows or not columns:
        # Few rows pass: copying just those in Arrow beats converting whole
        # columns (strings are copied into Polars' own layout). Arrow's filter
        # drops the rows whose mask is null.
        try:
            return _to_polars(narrowed.filter(mask.to_arrow()))
        except pa.ArrowNotImplementedError:
            pass  # a type Arrow cannot filter (string_view in pyarrow 26): Polars can
    # Many rows pass: Polars filters its zero-copy columns faster than Arrow.
    return _to_polars(narrowed).filter(mask)


def _split(frame: pl.DataFrame, batch_size: int | None) -> Iterator[pl.DataFrame]:
    """Zero-copy slices of ``frame`` of at most ``batch_size`` rows (the whole frame without a hint)."""
    if batch_size is None or batch_size <= 0 or frame.height <= batch_size:
        yield frame
        return
    for offset in range(0, frame.height, batch_size):
        yield frame.slice(offset, batch_size)


def _to_polars(batch: pa.RecordBatch | pa.Table) -> pl.DataFrame:
    """``batch`` as a DataFrame, zero-copy where Polars allows; a batch without columns keeps its height."""
    import polars as pl

    if batch.num_columns == 0:
        # pl.from_arrow drops the row count of a column-less batch, which
        # count(*) over an empty projection needs.
        return pl.DataFrame().select(pl.repeat(None, batch.num_rows).alias("_")).drop("_")
    frame = pl.from_arrow(batch, rechunk=False)
    assert isinstance(frame, pl.DataFrame)  # a RecordBatch always converts to a DataFrame
    return frame
