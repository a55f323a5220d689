"""Polars: a cache as a re-collectable ``LazyFrame`` with projection, predicate and limit pushdown.

:func:`scan` registers the cache with Polars' IO-plugin API
(:func:`polars.io.plugins.register_io_source`). Polars calls the plugin once
per scan node of every ``collect``, passing the projected columns, the
predicate, the row limit and a batch-size hint; the plugin answers with a fresh
cache reader, so the same ``LazyFrame`` can be collected any number of times
and each collect replays the cache from batch 0.

The scan is never a ``LazyFrameResolver`` (Polars 2.1): Polars' streaming
engine panics on plans over a resolver whose scan node was given a
projection narrower than its schema (a window function, ``with_row_index``
over a table with a column the query does not read). See
``docs/benchmarks.md`` for what that costs.

What the IO-plugin scan does, cheapest first:

1. with a predicate, over a fully ingested cache (without ``max_readers``),
   skips the batches no row of can pass, told from batch statistics (bounds
   and null counts of the predicate's columns, computed by the cache the
   first time a predicate reads a column, and kept), in Polars' meaning of
   the predicate (NaN above every number, categorical order:
   ``batchcorder.adapters._polars_pruning``); the batches every row of passes
   are converted without evaluating the predicate. Only a predicate no part
   of which can raise is judged so: any other is evaluated on every row, so
   that it raises as over the table, whatever the cache holds yet;
2. evaluates the predicate on the predicate's own columns only, and drops
   the rows it rejects before converting the other columns, so a column
   Polars must copy (strings become string views) is converted for the
   passing rows alone;
3. hands the batches to Polars with :func:`polars.from_arrow`, which is
   zero-copy for numeric, temporal and boolean columns, in frames of about
   32 MiB of such columns, or 16 MiB when a column must be copied (strings):
   every frame costs Polars' pipeline a fixed amount, but Polars works on
   several frames at once (measured: 4 to 1024 MiB frames); Polars'
   batch-size hint is not followed down to small frames;
4. answers a scan that reads no column (a row count) with one frame;
5. stops reading the cache once it has read ``n_rows`` rows (``head``/``LIMIT``;
   Polars' row limit counts rows of the source, before the predicate), one
   batch at a time.

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
Where evaluating the predicate raises, the scan raises: it never answers
where a part of its predicate fails. (Over a ``DataFrame`` Polars' optimiser
may fold a predicate that can hold for no row, ``x.is_null() & (x >= 0)``,
into an empty answer without evaluating a failing part, depending on the
rest of the query.) A scan that evaluates its predicate on no row (an empty
cache, every batch skipped) raises where Polars refuses the predicate for
its types (a list compared with a number). A panic of Polars in the work the scan does raises
:class:`batchcorder.errors.EnginePanicError`, chained from the panic.

Without Polars installed, :func:`scan`, :func:`register` and
:func:`polars_schema` raise ``ModuleNotFoundError`` saying
``pip install 'batchcorder[polars]'``; importing this module needs only
pyarrow.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batchcorder._adapter_kit import (
    logical_nbytes,
    panics_raised,
    polars_panics_raised,
    require_engine,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import polars as pl

    from batchcorder import Replayable
    from batchcorder._adapter_kit import Selection

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

    with panics_raised("Polars"):
        frame = pl.from_arrow(schema.empty_table(), rechunk=False)
    assert isinstance(frame, pl.DataFrame)  # a Table always converts to a DataFrame
    return frame.schema


def scan(cache: Replayable) -> pl.LazyFrame:
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

    from batchcorder._adapter_kit import check_cache

    check_cache(cache, "batchcorder.adapters.polars.scan")

    arrow_schema = cache.schema
    skipping = _Skipping(cache)

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        frames = _scan_batches(cache, arrow_schema, with_columns, predicate, n_rows, skipping)
        return polars_panics_raised(frames)

    streaming = register_io_source(
        source,
        schema=polars_schema(arrow_schema),
        # The cache replays identical data, so equal scans may be shared.
        is_pure=True,
        explain_name="batchcorder",
    )
    return streaming


def register(ctx: pl.SQLContext[Any], name: str, cache: Replayable) -> pl.LazyFrame:
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
#: Batches are converted to Polars in groups of about this many bytes of the
#: columns read: each frame handed to Polars has a fixed cost, but Polars
#: works on several frames at once, and groups with a column Polars copies
#: (strings) keep what is converted at once small.
_ZERO_COPY_GROUP_BYTES = 32 << 20
_COPIED_GROUP_BYTES = 16 << 20


class _Group:
    """Consecutive batches converted to Polars together, all taken whole or all filtered."""

    def __init__(self, whole: bool) -> None:
        self.whole = whole
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0

    def table(self, schema: pa.Schema) -> pa.Table:
        return pa.Table.from_batches(self.batches, schema=schema)


def _groups(
    batches: Iterable[pa.RecordBatch],
    columns: list[str],
    selection: Selection | None,
) -> Iterator[_Group]:
    """The batches a selection keeps, in order, in groups of a bounded size.

    A group passes whole if all its batches do; otherwise the predicate is
    evaluated once over the group (one evaluation of a few batches costs less
    than one per batch). Without a selection every batch is kept and none is
    known to pass whole. The bytes of a row (of the columns read) are those of
    the first batch.
    """
    group: _Group | None = None
    rows_per_group = 0
    for index, batch in enumerate(batches):
        if selection is not None and not selection.keep[index]:
            continue
        if not rows_per_group and batch.num_rows:
            narrowed = batch.select(columns)
            row_bytes = logical_nbytes(narrowed) / batch.num_rows if columns else 0
            limit = _ZERO_COPY_GROUP_BYTES if _zero_copy(narrowed.schema) else _COPIED_GROUP_BYTES
            rows_per_group = max(1, int(limit / max(row_bytes, 1)))
        if group is not None and group.rows >= rows_per_group:
            yield group
            group = None
        if group is None:
            group = _Group(whole=True)
        group.whole = group.whole and selection is not None and bool(selection.whole[index])
        group.batches.append(batch)
        group.rows += batch.num_rows
    if group is not None:
        yield group


class _Skipping:
    """Which batches of a cache a predicate may keep, remembered per predicate.

    One per :func:`scan`: the cache's batches never change, so the selection
    of a predicate holds for every collect that reads as many batches.
    """

    def __init__(self, cache: Replayable) -> None:
        self._cache = cache
        from batchcorder._adapter_kit import Memo

        self._remembered: Memo[tuple[str, int], Selection | None] = Memo()

    def selection(
        self, batches: list[pa.RecordBatch], predicate: pl.Expr, schema: pa.Schema
    ) -> Selection | None:
        """Which of the cache's ``batches`` the predicate may keep, told from batch statistics."""
        from batchcorder._adapter_kit import select_batches
        from batchcorder.adapters._polars_pruning import predicate_node

        try:
            key = (predicate.meta.serialize(format="json"), len(batches))
        except Exception:  # an expression Polars cannot serialise
            return None

        def select() -> Selection | None:
            # None unless no part of the predicate can raise: it is then evaluated on every row.
            node = predicate_node(predicate, schema)
            return None if node is None else select_batches(node, batches, self._cache.statistics)

        return self._remembered.get(key, select)


def _whole_cache(cache: Replayable) -> bool:
    """Whether one scan may hold every batch of ``cache`` at once, to skip some by statistics.

    Only once the upstream is exhausted (a scan never ingests ahead of its
    reads), and not with ``max_readers``, whose readers free what they pass.
    """
    return bool(cache.upstream_exhausted and cache.max_readers is None)


def _scan_batches(
    cache: Replayable,
    schema: pa.Schema,
    with_columns: list[str] | None,
    predicate: pl.Expr | None,
    n_rows: int | None,
    skipping: _Skipping | None,
) -> Iterator[pl.DataFrame]:
    """The DataFrames of one scan: one new reader, limited, skipped, filtered and narrowed.

    ``n_rows`` counts rows of the source, before the predicate: Polars pushes a
    row limit into a scan that also filters only for ``head(n).filter(...)``
    (a ``filter(...).head(n)`` keeps its slice above the scan). With a limit,
    batches go one at a time, so the scan never pulls a batch it does not need.
    """
    columns = list(schema.names) if with_columns is None else list(with_columns)
    evaluated = _Evaluated()
    yield from _read(cache, schema, columns, predicate, n_rows, skipping, evaluated)
    if predicate is not None and not evaluated.rows:
        _check_on_no_rows(predicate, schema)


class _Evaluated:
    """How many rows of a scan its predicate was evaluated on."""

    def __init__(self) -> None:
        self.rows = 0


def _read(
    cache: Replayable,
    schema: pa.Schema,
    columns: list[str],
    predicate: pl.Expr | None,
    n_rows: int | None,
    skipping: _Skipping | None,
    evaluated: _Evaluated,
) -> Iterator[pl.DataFrame]:
    """The frames of :func:`_scan_batches`, counting the rows the predicate is evaluated on."""
    if n_rows is not None and n_rows <= 0:
        return
    # Closing the reader (also when Polars drops the generator early) lets a
    # cache with max_readers release the batches it kept for this scan.
    with cache.reader() as reader:
        if n_rows is not None:
            yield from _limited(reader, columns, predicate, n_rows, schema, evaluated)
            return
        if predicate is None and not columns:
            # Only the row count is read (count(*)): one frame without columns.
            yield _to_polars(_no_columns(sum(batch.num_rows for batch in reader)))
            return
        batches: Iterable[pa.RecordBatch] = reader
        selection = None
        if predicate is not None and skipping is not None and _whole_cache(cache):
            listed = list(reader)  # the cache's own batches: no copy
            batches, selection = listed, skipping.selection(listed, predicate, schema)
        predicate_columns = _predicate_columns(predicate, schema) if predicate is not None else None
        for group in _groups(batches, columns, selection):
            table = group.table(schema)
            frame: pl.DataFrame | None
            if predicate is None or group.whole:
                frame = _to_polars(table.select(columns))
            else:
                frame = _filtered(table, columns, predicate, predicate_columns, evaluated)
            if frame is not None:
                yield frame


def _limited(
    reader: Iterable[pa.RecordBatch],
    columns: list[str],
    predicate: pl.Expr | None,
    n_rows: int,
    schema: pa.Schema,
    evaluated: _Evaluated,
) -> Iterator[pl.DataFrame]:
    """The frames of the first ``n_rows`` rows of the source, one batch at a time."""
    remaining = n_rows
    predicate_columns = _predicate_columns(predicate, schema) if predicate is not None else None
    for batch in reader:
        # The rows of this batch within the limit (a zero-copy slice).
        rows = batch.slice(0, remaining)
        remaining -= rows.num_rows
        if predicate is not None:
            frame = _filtered(rows, columns, predicate, predicate_columns, evaluated)
        else:
            frame = _to_polars(rows.select(columns))
        if frame is not None:
            yield frame
        if remaining <= 0:
            # Stop pulling: a LIMIT ingests no further upstream batch.
            return


def _check_on_no_rows(predicate: pl.Expr, schema: pa.Schema) -> None:
    """Raise what evaluating ``predicate`` raises over a table of ``schema`` and no row.

    A scan that evaluates its predicate on no row (an empty cache, every
    batch skipped or passed whole) raises all the same where Polars refuses
    the predicate for its types (a list compared with a number), as the
    table does; a predicate that fails only on some values passes.
    """
    _empty_frame(schema).select(predicate.alias("mask"))


@functools.lru_cache(maxsize=16)
def _empty_frame(schema: pa.Schema) -> pl.DataFrame:
    """A frame of no rows with ``schema`` (kept: making one costs ten times checking a predicate)."""
    return _to_polars(schema.empty_table())


def _no_columns(rows: int) -> pa.RecordBatch:
    """A batch of ``rows`` rows and no column (no buffer is allocated)."""
    return pa.RecordBatch.from_arrays([pa.nulls(rows)], names=["_"]).select([])


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
    evaluated: _Evaluated,
) -> pl.DataFrame | None:
    """``batch`` narrowed to ``columns`` and to the rows ``predicate`` keeps; None when it keeps none.

    A row is kept where the predicate is true; false and null drop it, as
    ``LazyFrame.filter`` does. A batch of no row is not evaluated: Polars
    does not evaluate a filter of a table of no row either (but for
    :func:`_check_on_no_rows`).
    """

    if not batch.num_rows:
        return None
    evaluated.rows += batch.num_rows
    # Only the predicate's columns are converted to evaluate it (none for a
    # literal predicate: a column-less frame keeps the batch's height); all of
    # them when the predicate's columns are unknown.
    probe = batch if predicate_columns is None else batch.select(predicate_columns)
    mask = _mask(_to_polars(probe), predicate, batch.num_rows)
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


def _mask(frame: pl.DataFrame, predicate: pl.Expr, rows: int) -> pl.Series:
    """The value of ``predicate`` for each of the ``rows`` rows of ``frame``, as booleans.

    Evaluated on every row, whatever the other parts of the predicate give:
    where a part raises, the scan raises. (Over a ``DataFrame``, Polars'
    optimiser may fold a predicate that can hold for no row, such as
    ``x.is_null() & (x >= 0) & (l > 0)``, into no row without evaluating the
    part that raises, or not, depending on the rest of the query; the scan
    sees only the predicate, and never answers where evaluating it raises.)
    """
    import polars as pl

    mask = frame.select(predicate.alias("mask")).to_series()
    if mask.dtype == pl.Null:
        mask = mask.cast(pl.Boolean)  # a bare null literal
    if mask.len() != rows:
        if mask.len() != 1:
            raise ValueError(
                f"the pushed-down predicate {predicate} gave {mask.len()} values "
                f"for a batch of {rows} rows"
            )
        # A scalar result (a literal, an expression without columns) holds for every row.
        mask = pl.repeat(mask.item(), rows, eager=True, dtype=pl.Boolean)
    return mask


def _zero_copy(schema: pa.Schema) -> bool:
    """Whether Polars takes every column of ``schema`` without a copy: numbers, booleans, dates, times."""
    types = pa.types
    return all(
        (
            types.is_integer(field.type)
            or types.is_floating(field.type)
            or types.is_boolean(field.type)
            or types.is_temporal(field.type)
        )
        and not types.is_interval(field.type)
        for field in schema
    )


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
