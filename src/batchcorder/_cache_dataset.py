"""The pyarrow dataset :func:`batchcorder.dataset` and the engine adapters hand to engines.

Imported only when a dataset is made: ``pyarrow.dataset`` takes a while to
import, and ``import batchcorder`` must not pay for it.

:class:`CacheDataset` is an ``InMemoryDataset`` over a cache's own batches
whose scans skip, by batch statistics (:mod:`batchcorder._scan.statistics`), the
batches a filter excludes: a scanner with a filter reads only the batches
that may hold a row the filter keeps, and is otherwise pyarrow's own.
:meth:`CacheDataset.reader` streams the rows of a filter as a plain
``RecordBatchReader`` (no per-batch scan task): the batches a filter
excludes are skipped, those it keeps whole pass as they are, and the rest are
filtered batch by batch (:class:`batchcorder._scan.rows.RowFilter`).

The objects an engine's scan of a dataset expects (a DuckDB scan, DataFusion
fragments) are the adapters' own (``batchcorder.adapters._duckdb_dataset``,
``batchcorder.adapters._datafusion_dataset``), built on :meth:`CacheDataset.reader`.

A batch is skipped or taken whole only for a filter that cannot fail on
any data (:func:`batchcorder._scan.predicates.cannot_raise`), so every error a plain
dataset raises is raised here too. A dataset made for an engine rewrites
every filter it is given to the engine's meaning
(:mod:`batchcorder._scan.engine_semantics`) before anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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

__all__ = ["CacheDataset", "arrow_can_filter"]

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
        return self.pyarrow_scanner(columns, self.engine_filter(filter), **options)

    def pyarrow_scanner(self, columns: Any, filter: pc.Expression | None, **options: Any) -> Any:
        """:meth:`scanner` of a filter already rewritten (:meth:`engine_filter`)."""
        kept = self._kept_batches(filter)
        if kept is None:
            return super().scanner(columns=columns, filter=filter, **options)
        subset = ds.InMemoryDataset(kept, schema=self.schema)
        return subset.scanner(columns=columns, filter=filter, **options)

    def get_fragments(self, filter: pc.Expression | None = None) -> Iterable[ds.Fragment]:
        """The fragments of the batches ``filter`` may keep (DataFusion scans a dataset so).

        Takes the arguments of ``pyarrow.dataset.Dataset.get_fragments``.
        """
        self.check_open()
        filter = self.engine_filter(filter)
        kept = self._kept_batches(filter)
        fragments: Iterable[ds.Fragment]
        if kept is None:
            fragments = super().get_fragments(filter)
            return fragments
        if not kept:
            # Keep one batch with rows (the filter drops them): a dataset with
            # rows has fragments, and DataFusion cannot plan some scans of none.
            kept = [batch for batch in self._batches if batch.num_rows][:1]
        fragments = ds.InMemoryDataset(kept, schema=self.schema).get_fragments(filter)
        return fragments

    @property
    def holds_batches(self) -> bool:
        """Whether this dataset has the cache's batches (see :meth:`_kept_batches`)."""
        return "_batches" in self.__dict__

    @property
    def batches_with_rows(self) -> int:
        """How many of the dataset's batches hold rows."""
        return sum(1 for batch in self._batches if batch.num_rows)

    def _kept_batches(self, filter: pc.Expression | None) -> list[pa.RecordBatch] | None:
        """The batches ``filter`` may keep; None to scan them all.

        A dataset pyarrow derives from this one (``Dataset.filter``) is of this
        class but was never initialised: it has no batches of its own here.
        """
        if filter is None or not self.holds_batches or not self._skips:
            return None
        selection = self.selection(filter)
        if selection is None or selection.keep.all():
            return None
        return [batch for batch, keep in zip(self._batches, selection.keep, strict=True) if keep]

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
        return self.rewritten_reader(columns, self.engine_filter(filter), part)

    def rewritten_reader(
        self,
        columns: list[str] | None,
        filter: pc.Expression | None,
        part: tuple[int, int] = (0, 1),
    ) -> pa.RecordBatchReader:
        """:meth:`reader` of a filter already rewritten (:meth:`engine_filter`)."""
        first, end = self.part_bounds(part)
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

    def part_bounds(self, part: tuple[int, int]) -> tuple[int, int]:
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
