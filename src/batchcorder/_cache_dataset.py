"""The pyarrow datasets :func:`batchcorder.dataset` and the DuckDB adapter hand to engines.

Imported only when a dataset is made: ``pyarrow.dataset`` takes a while to
import, and ``import batchcorder`` must not pay for it.

:class:`CacheDataset` is an ``InMemoryDataset`` over a cache's own batches
whose scans skip, by batch statistics (:mod:`batchcorder._scan.statistics`), the
batches a filter excludes: a scanner with a filter reads only the batches
that may hold a row the filter keeps, and is otherwise pyarrow's own.

:class:`ReaderScanDataset` adds what DuckDB's scan of a dataset can use: DuckDB
calls ``scanner(columns=..., filter=...)`` and reads only its
``to_reader()``, so the scan it gets streams the cache's batches as a plain
``RecordBatchReader`` (as a ``pa.Table`` would), takes the batches a filter
keeps whole without filtering them, and filters the rest batch by batch
with ``RecordBatch.filter(expression)`` (:class:`batchcorder._scan.rows.RowFilter`).
Any other use of the scan is a pyarrow ``Scanner``'s.

:class:`ReaderFragmentsDataset` is the same for DataFusion, which reads a
dataset as ``get_fragments()``, one partition of its plan each: the parts are
runs of consecutive batches streamed the same way.

A batch is skipped or taken whole only for a filter that cannot fail on
any data (:func:`batchcorder._scan.predicates.cannot_raise`), so every error a plain
dataset raises is raised here too. The datasets made for DuckDB and
DataFusion rewrite every filter they are given to the engine's meaning
(:mod:`batchcorder._scan.engine_semantics`) before anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from batchcorder._memo import Memo
from batchcorder._scan.arrow_format import decode, filter_key
from batchcorder._scan.predicates import Selection, cannot_raise, select_batches
from batchcorder._scan.rows import RowFilter
from batchcorder._scan.statistics import BatchStatistics
from batchcorder._scan.tree import Node, empty_batch

if TYPE_CHECKING:
    from batchcorder._lifetime import Lifetime

__all__ = ["CacheDataset", "ReaderFragmentsDataset", "ReaderScanDataset", "arrow_can_filter"]

#: Whose answers a dataset's filters give (see :class:`CacheDataset`).
SEMANTICS = ("pyarrow", "polars", "duckdb", "datafusion")


class CacheDataset(ds.InMemoryDataset):
    """An ``InMemoryDataset`` over a cache's batches that skips the batches a filter excludes.

    Parameters
    ----------
    batches : sequence of pyarrow.RecordBatch
        The cache's batches from batch 0, in order (not copied).
    schema : pyarrow.Schema
        Their schema.
    statistics : BatchStatistics
        Where the batches' statistics are kept (the cache's own, so every
        dataset of a cache shares them).
    semantics : {"pyarrow", "polars", "duckdb", "datafusion"}, default "pyarrow"
        Whose answers the filters give: pyarrow's (the answers of a dataset
        of the plain table), or an engine's, which do not filter again what
        the dataset returns (every filter is rewritten by
        :func:`batchcorder._scan.engine_semantics.engine_order`: NaN above every number
        and equal to itself, ``is_in`` null for a null).

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> batches = pa.table({"x": range(6)}).to_batches(max_chunksize=2)
    >>> data = CacheDataset(batches, batches[0].schema, BatchStatistics())
    >>> data.to_table(filter=ds.field("x") >= 4).column("x").to_pylist()
    [4, 5]
    >>> data.selection(ds.field("x") >= 4).keep.tolist()  # batches 0 and 1 are skipped
    [False, False, True]
    """

    def __init__(
        self,
        batches: Sequence[pa.RecordBatch],
        schema: pa.Schema,
        statistics: BatchStatistics,
        *,
        semantics: str = "pyarrow",
        lifetime: Lifetime | None = None,
    ) -> None:
        if semantics not in SEMANTICS:
            raise ValueError(f"semantics must be one of {SEMANTICS}, got {semantics!r}")
        super().__init__(list(batches), schema=schema)
        self._batches = list(batches)
        self._statistics = statistics
        self._semantics = semantics
        # The cache's lifetime: once it is closed, every scan says so.
        self._lifetime = lifetime
        # Serialised filter -> the filter rewritten to the engine's meaning.
        self._rewritten: Memo[bytes, pc.Expression] = Memo()
        # pyarrow fails to filter some types; skipping batches would then
        # answer where pyarrow's own scan of the batches raises.
        self._skips = arrow_can_filter(schema)
        # Serialised filter -> its selection. Batches never change, so a
        # selection holds for the dataset's lifetime.
        self._selections: Memo[bytes, Selection | None] = Memo()

    def selection(self, filter: pc.Expression) -> Selection | None:
        """Which batches ``filter`` may keep and which it keeps whole; None if it cannot be told.

        Parameters
        ----------
        filter : pyarrow.compute.Expression
            A filter as engines push it into a dataset.

        Returns
        -------
        Selection or None
        """
        key = filter_key(filter)
        if key is None:
            return None
        return self._selections.get(key, lambda: self._new_selection(filter))

    def _new_selection(self, filter: pc.Expression) -> Selection | None:
        """:meth:`selection`, computed."""
        node: Node | None = decode(filter)
        if node is None:
            return None
        selection = self._select(node)
        # A filter failing whatever the data (types it does not take)
        # fails over batches all skipped, too: then scan them all.
        narrows = not selection.keep.all() or selection.whole.any()
        if narrows and _fails_without_rows(filter, self.schema):
            return None
        return selection

    def _select(self, node: Node) -> Selection:
        """The batches a decoded filter may keep; all of them, none whole, if it may raise.

        A batch skipped or taken whole never runs the filter: only a filter
        that cannot fail on any data may leave a batch out.
        """
        if not cannot_raise(node, self.schema):
            count = len(self._batches)
            return Selection(keep=np.ones(count, dtype=bool), whole=np.zeros(count, dtype=bool))
        return select_batches(node, self._batches, self._statistics)

    def engine_filter(self, filter: pc.Expression | None) -> pc.Expression | None:
        """``filter`` as this dataset applies it: rewritten to its engine's meaning, if it has one.

        Parameters
        ----------
        filter : pyarrow.compute.Expression, optional
            A filter as given to a scan.

        Returns
        -------
        pyarrow.compute.Expression or None
        """
        semantics = self.__dict__.get("_semantics", "pyarrow")
        if filter is None or semantics == "pyarrow":
            return filter
        if isinstance(filter, pa.Scalar):
            # DataFusion (55) pushes a filter it simplified to a constant as
            # a pyarrow scalar, which a scanner does not take: the same
            # filter, as an expression.
            filter = pc.scalar(filter)
        from batchcorder._scan.engine_semantics import engine_order

        key = filter_key(filter)
        if key is None:
            return engine_order(filter, self.schema, dialect=semantics)
        return self._rewritten.get(
            key, lambda: engine_order(filter, self.schema, dialect=semantics)
        )

    def check_open(self) -> None:
        """Raise ``CacheClosedError`` if the cache this dataset was made of is closed.

        Every scan asks first (:meth:`scanner`, and through it ``to_table``,
        ``count_rows``, ``head``, ``to_batches``, ``take``; :meth:`get_fragments`,
        :meth:`filter`, :meth:`sort_by`, :meth:`join`, :meth:`join_asof`,
        :meth:`replace_schema`), so ``close()`` ends the dataset as it ends
        every consumer of the cache.
        """
        lifetime = self.__dict__.get("_lifetime")
        if lifetime is not None:
            lifetime.check_open()

    def filter(self, expression: pc.Expression) -> ds.Dataset:
        """pyarrow's ``Dataset.filter``, of ``expression`` as this dataset applies it."""
        self.check_open()
        return super().filter(self.engine_filter(expression))

    def sort_by(self, sorting: Any, **kwargs: Any) -> ds.Dataset:
        """pyarrow's ``Dataset.sort_by``, once the cache is known to be open."""
        self.check_open()
        return super().sort_by(sorting, **kwargs)

    def join(self, *args: Any, **kwargs: Any) -> ds.Dataset:
        """pyarrow's ``Dataset.join``, once the cache is known to be open."""
        self.check_open()
        return super().join(*args, **kwargs)

    def join_asof(self, *args: Any, **kwargs: Any) -> ds.Dataset:
        """pyarrow's ``Dataset.join_asof``, once the cache is known to be open."""
        self.check_open()
        return super().join_asof(*args, **kwargs)

    def replace_schema(self, schema: pa.Schema) -> ds.Dataset:
        """pyarrow's ``Dataset.replace_schema``, once the cache is known to be open."""
        self.check_open()
        return super().replace_schema(schema)

    def scanner(
        self,
        columns: Any = None,
        filter: pc.Expression | None = None,
        **options: Any,
    ) -> Any:
        """A pyarrow ``Scanner``, over only the batches ``filter`` may keep.

        Takes the arguments of ``pyarrow.dataset.Dataset.scanner``.
        """
        self.check_open()
        return self._scanner(columns, self.engine_filter(filter), **options)

    def _scanner(self, columns: Any, filter: pc.Expression | None, **options: Any) -> Any:
        """:meth:`scanner` of a filter already rewritten (:meth:`engine_filter`)."""
        kept = self._kept_batches(filter)
        if kept is None:
            return super().scanner(columns=columns, filter=filter, **options)
        subset = ds.InMemoryDataset(kept, schema=self.schema)
        return subset.scanner(columns=columns, filter=filter, **options)

    def get_fragments(self, filter: pc.Expression | None = None) -> Iterator[ds.Fragment]:
        """The fragments of the batches ``filter`` may keep (DataFusion scans a dataset so).

        Takes the arguments of ``pyarrow.dataset.Dataset.get_fragments``.
        """
        self.check_open()
        filter = self.engine_filter(filter)
        kept = self._kept_batches(filter)
        if kept is None:
            return super().get_fragments(filter)
        if not kept:
            # Keep one batch with rows (the filter drops them): a dataset with
            # rows has fragments, and DataFusion cannot plan some scans of none.
            kept = [batch for batch in self._batches if batch.num_rows][:1]
        return ds.InMemoryDataset(kept, schema=self.schema).get_fragments(filter)

    def _kept_batches(self, filter: pc.Expression | None) -> list[pa.RecordBatch] | None:
        """The batches ``filter`` may keep; None to scan them all.

        A dataset pyarrow derives from this one (``Dataset.filter``) is of this
        class but was never initialised: it has no batches of its own here.
        """
        if filter is None or "_batches" not in self.__dict__ or not self._skips:
            return None
        selection = self.selection(filter)
        if selection is None or selection.keep.all():
            return None
        return [batch for batch, keep in zip(self._batches, selection.keep, strict=True) if keep]


class ReaderScanDataset(CacheDataset):
    """A :class:`CacheDataset` whose ``scanner()`` streams batches as a plain reader.

    What DuckDB's scan of a dataset calls: ``scanner(columns=..., filter=...)``,
    then ``to_reader()``. Without a filter the reader streams the cache's
    batches, projected, with no per-batch scan task; with one, it skips the
    batches the filter excludes, passes those it keeps whole as they are, and
    filters the others with pyarrow's compute functions. The scan's other
    methods are a pyarrow ``Scanner``'s.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> batches = pa.table({"x": range(6), "y": list("abcdef")}).to_batches(max_chunksize=2)
    >>> data = ReaderScanDataset(batches, batches[0].schema, BatchStatistics())
    >>> scan = data.scanner(columns=["y"], filter=ds.field("x") >= 3)
    >>> scan.to_reader().read_all().column("y").to_pylist()
    ['d', 'e', 'f']
    >>> scan.count_rows()
    3
    """

    @cached_property
    def _whole_table(self) -> pa.Table:
        """Every batch holding rows, as one table: what an unfiltered scan of them all reads."""
        return _table(self._batches, self.schema)

    @cached_property
    def _prepared_scans(
        self,
    ) -> Memo[tuple[bytes, tuple[str, ...] | None], tuple[pa.Schema, RowFilter]]:
        """(serialised filter, columns) -> the scan's projected schema, and its :class:`RowFilter`."""
        return Memo()

    def _scanner(self, columns: Any, filter: pc.Expression | None, **options: Any) -> Any:
        """A scan whose ``to_reader()`` streams the batches (see the class); a ``Scanner`` otherwise."""
        if "_batches" not in self.__dict__ or options:
            return super()._scanner(columns, filter, **options)
        if columns is not None and not (
            isinstance(columns, list) and all(isinstance(name, str) for name in columns)
        ):
            return super()._scanner(columns, filter)
        return _ReaderScan(self, columns, filter)

    def reader(
        self,
        columns: list[str] | None,
        filter: pc.Expression | None,
        part: tuple[int, int] = (0, 1),
    ) -> pa.RecordBatchReader:
        """The rows ``filter`` keeps, of ``columns``, as a reader.

        Parameters
        ----------
        columns : list of str, optional
            The columns, in order; all of them when None.
        filter : pyarrow.compute.Expression, optional
            The rows to keep; all of them when None.
        part : tuple of int, default (0, 1)
            ``(k, n)``: read only the ``k``-th of ``n`` runs of consecutive
            batches, for ``n`` scans sharing the work.

        Returns
        -------
        pyarrow.RecordBatchReader
        """
        return self._reader(columns, self.engine_filter(filter), part)

    def _reader(
        self,
        columns: list[str] | None,
        filter: pc.Expression | None,
        part: tuple[int, int] = (0, 1),
    ) -> pa.RecordBatchReader:
        """:meth:`reader` of a filter already rewritten (:meth:`engine_filter`)."""
        first, end = self._bounds(part)
        if filter is None:
            if first == 0 and end == len(self._batches):
                table = self._whole_table
            else:
                table = _table(self._batches[first:end], self.schema)
            if columns == []:
                # Only the row count is asked for (count(*)): one batch without columns.
                return pa.RecordBatchReader.from_batches(
                    pa.schema([]), [_no_columns(table.num_rows)]
                )
            return (table if columns is None else table.select(columns)).to_reader()
        key = filter_key(filter)
        selection = self.selection(filter) if key is not None and self._skips else None
        if key is None or selection is None:
            batches = self._batches[first:end]
            subset = ds.InMemoryDataset(batches, schema=self.schema)
            return subset.scanner(columns=columns, filter=filter).to_reader()
        schema, rows = self._prepared(key, columns, filter)
        return pa.RecordBatchReader.from_batches(
            schema, self._selected(columns, selection, rows, first, end)
        )

    def _bounds(self, part: tuple[int, int]) -> tuple[int, int]:
        """The batch indices ``[first, end)`` of part ``k`` of ``n``."""
        index, count = part
        total = len(self._batches)
        return total * index // count, total * (index + 1) // count

    def _prepared(
        self, key: bytes, columns: list[str] | None, filter: pc.Expression
    ) -> tuple[pa.Schema, RowFilter]:
        """The projected schema of a filtered scan, and ``filter`` as a :class:`RowFilter`.

        The schema comes from pyarrow's scanner, which checks the columns and
        the filter against the dataset's schema and raises its own errors.
        """
        prepared_key = (key, None if columns is None else tuple(columns))
        return self._prepared_scans.get(prepared_key, lambda: self._prepare(columns, filter))

    def _prepare(
        self, columns: list[str] | None, filter: pc.Expression
    ) -> tuple[pa.Schema, RowFilter]:
        """:meth:`_prepared`, computed."""
        empty = ds.InMemoryDataset([], schema=self.schema)
        schema = empty.scanner(columns=columns, filter=filter).projected_schema
        return schema, RowFilter(filter, decode(filter), self.schema)

    def _selected(
        self,
        columns: list[str] | None,
        selection: Selection,
        rows: RowFilter,
        first: int,
        end: int,
    ) -> Iterator[pa.RecordBatch]:
        """The kept batches of ``[first, end)`` in order: whole ones projected, the others filtered."""
        for index in first + np.flatnonzero(selection.keep[first:end]):
            batch = self._batches[index]
            if not selection.whole[index]:
                yield from rows.apply(batch, columns)
            elif batch.num_rows:
                yield batch if columns is None else batch.select(columns)


def _fails_without_rows(filter: pc.Expression, schema: pa.Schema) -> bool:
    """Whether ``filter`` raises over a batch of ``schema`` holding no row.

    Such an error does not depend on the data (an unknown column, a type a
    function does not take): a plain dataset raises it however its rows
    fall, so batches may not be skipped around it.
    """
    try:
        ds.InMemoryDataset([empty_batch(schema)], schema=schema).to_table(filter=filter)
    except (pa.ArrowException, ValueError, TypeError, KeyError):
        return True
    return False


def arrow_can_filter(schema: pa.Schema) -> bool:
    """Whether pyarrow can filter every column of ``schema``.

    pyarrow (26) has no filter kernel for some types: string and binary views
    and run-end encoded arrays, at any depth.

    Examples
    --------
    >>> import pyarrow as pa
    >>> arrow_can_filter(pa.schema([("s", pa.string())])), arrow_can_filter(pa.schema([("s", pa.string_view())]))
    (True, False)
    """
    empty = schema.empty_table()
    try:
        empty.filter(pa.array([], pa.bool_()))
        empty.take(pa.array([], pa.int32()))
    except pa.ArrowNotImplementedError:
        return False
    return True


def _table(batches: Sequence[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """The batches holding rows, as one table (no copy).

    An empty batch adds nothing to a scan, and may be an empty slice at a
    non-zero offset, which some engines' string functions do not expect.
    """
    return pa.Table.from_batches([batch for batch in batches if batch.num_rows], schema=schema)


def _no_columns(rows: int) -> pa.RecordBatch:
    """A batch of ``rows`` rows and no column (no buffer is allocated)."""
    return pa.RecordBatch.from_arrays([pa.nulls(rows)], names=["_"]).select([])


class _ReaderScan:
    """One scan of a :class:`ReaderScanDataset`: ``to_reader()`` streams, the rest is a ``Scanner``'s."""

    def __init__(
        self, data: ReaderScanDataset, columns: list[str] | None, filter: pc.Expression | None
    ) -> None:
        self._data = data
        self._columns = columns
        self._filter = filter

    def to_reader(self) -> pa.RecordBatchReader:
        """The scan's rows as a reader over the cache's batches."""
        return self._data._reader(self._columns, self._filter)

    @property
    def projected_schema(self) -> pa.Schema:
        """The schema of the scan's batches, as pyarrow's scanner gives it."""
        empty = ds.InMemoryDataset([], schema=self._data.schema)
        return empty.scanner(columns=self._columns, filter=self._filter).projected_schema

    def __getattr__(self, name: str) -> Any:
        scanner = CacheDataset._scanner(self._data, self._columns, self._filter)
        return getattr(scanner, name)


class ReaderFragmentsDataset(ReaderScanDataset):
    """A :class:`ReaderScanDataset` split into a few parts, as DataFusion's scan of a dataset reads it.

    DataFusion (``SessionContext.register_dataset``) asks the dataset for
    ``scanner(columns=..., filter=...).projected_schema``, then for
    ``get_fragments(filter)``, one partition of its plan each, and reads
    every fragment's ``scanner(schema, columns=..., filter=...,
    batch_size=...).to_batches()``. Here the "fragments" are ``parts`` runs of
    consecutive batches, each streaming through :meth:`reader`: the batches a
    filter excludes are skipped, those it keeps whole pass as they are,
    nothing is copied for an unfiltered scan, and ``count(*)`` (no column)
    reads one row count per part.

    Parameters
    ----------
    batches, schema, statistics
        As :class:`CacheDataset`.
    parts : int
        Fragments, hence partitions of DataFusion's plan.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> batches = pa.table({"x": range(6)}).to_batches(max_chunksize=2)
    >>> data = ReaderFragmentsDataset(batches, batches[0].schema, BatchStatistics(), parts=2)
    >>> fragments = data.get_fragments(ds.field("x") >= 3)
    >>> [
    ...     batch.num_rows
    ...     for fragment in fragments
    ...     for batch in fragment.scanner(data.schema, columns=[], filter=ds.field("x") >= 3).to_batches()
    ... ]
    [1, 2]
    """

    def __init__(
        self,
        batches: Sequence[pa.RecordBatch],
        schema: pa.Schema,
        statistics: BatchStatistics,
        parts: int,
        *,
        semantics: str = "pyarrow",
        lifetime: Lifetime | None = None,
    ) -> None:
        super().__init__(batches, schema, statistics, semantics=semantics, lifetime=lifetime)
        self._parts = max(1, parts)

    def get_fragments(self, filter: pc.Expression | None = None) -> list[_Part]:  # type: ignore[override]
        """One part per partition, at least one: the filter is applied when each is scanned.

        Without rows there is still one (empty) part: DataFusion (55) cannot
        plan some scans of a dataset with no fragment (``ORDER BY`` fails its
        plan's sanity check), which it answers over an empty table.
        """
        self.check_open()
        parts = max(1, min(self._parts, sum(1 for batch in self._batches if batch.num_rows)))
        return [_Part(self, (index, parts)) for index in range(parts)]


class _Part:
    """A run of consecutive batches of a :class:`ReaderFragmentsDataset`, read as a fragment."""

    def __init__(self, data: ReaderFragmentsDataset, part: tuple[int, int]) -> None:
        self._data = data
        self._part = part

    def scanner(
        self,
        schema: pa.Schema | None = None,
        columns: list[str] | None = None,
        filter: pc.Expression | None = None,
        **options: Any,
    ) -> _PartScan:
        """The part's rows ``filter`` keeps, of ``columns``."""
        self._data.check_open()
        first, end = self._data._bounds(self._part)
        if first == end:
            # A part of no batch (the one part of an empty cache) keeps
            # nothing, whatever the filter: not even one pyarrow cannot
            # evaluate (string views), which DataFusion answers over a table.
            empty = ds.InMemoryDataset([], schema=self._data.schema)
            schema = empty.scanner(columns=columns).projected_schema
            return _PartScan(pa.RecordBatchReader.from_batches(schema, []))
        return _PartScan(self._data.reader(columns, filter, self._part))


class _PartScan:
    """The scan of one part: ``to_batches()`` and ``projected_schema``, as a ``Scanner`` has."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._reader = reader
        self.projected_schema = reader.schema

    def to_batches(self) -> Iterator[pa.RecordBatch]:
        """The batches of the part, in order."""
        return iter(self._reader)
