"""Batch-level statistics: per batch and column, the bounds of its values and whether it holds nulls.

A cache keeps one :class:`BatchStatistics` (``StreamCache.statistics``). It
computes nothing at ingestion, which stays as cheap as it was: the statistics
of a column are computed the first time a scan asks for them, once per batch,
and kept, since a cached batch never changes. :mod:`batchcorder._scan.predicates`
uses them to skip the batches a filter excludes.

Every figure is exact or errs on the side of "anything is possible": a bound
is recorded only where every non-null value of the batch lies within it (no
NaN, a type with a total order), and a column whose nulls cannot be counted
from its validity bitmap (unions, run-end encoding, a dictionary holding
nulls) is taken to hold some.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = ["BatchStatistics", "ColumnStatistics", "bounded_type"]


def bounded_type(data_type: pa.DataType) -> bool:
    """Whether values of ``data_type`` are totally ordered and ``min_max`` bounds them.

    Strings and binaries compare by bytes, floats as numbers once NaN is
    ruled out (per batch), booleans as ``false < true``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> bounded_type(pa.timestamp("us", tz="Europe/Paris")), bounded_type(pa.string())
    (True, True)
    >>> bounded_type(pa.list_(pa.int64())), bounded_type(pa.string_view())
    (False, False)
    """
    types = pa.types
    return (
        types.is_integer(data_type)
        or types.is_floating(data_type)
        or types.is_decimal(data_type)
        or types.is_boolean(data_type)
        or types.is_temporal(data_type)
        or types.is_string(data_type)
        or types.is_large_string(data_type)
        or types.is_binary(data_type)
        or types.is_large_binary(data_type)
        or types.is_fixed_size_binary(data_type)
    ) and not types.is_interval(data_type)


def _exact_null_count(data_type: pa.DataType) -> bool:
    """Whether ``Array.null_count`` counts every null an array of ``data_type`` holds."""
    return not (
        isinstance(data_type, pa.BaseExtensionType)
        or pa.types.is_union(data_type)
        or pa.types.is_run_end_encoded(data_type)
    )


@dataclass(frozen=True)
class _BatchColumn:
    """One column of one batch: what a filter on it may meet."""

    rows: int
    null_count: int | None  # None when it cannot be told
    may_hold_null: bool
    may_hold_value: bool  # a non-null value
    may_hold_nan: bool
    low: pa.Scalar | None  # every non-null value lies in [low, high]; None: unknown
    high: pa.Scalar | None


def _describe(array: pa.Array) -> _BatchColumn:
    """The statistics of one column of one batch."""
    import pyarrow.compute as pc  # not at import: importing batchcorder stays light

    rows = len(array)
    data_type = array.type
    values = array
    null_count: int | None = array.null_count
    if pa.types.is_null(data_type):
        return _BatchColumn(rows, rows, rows > 0, False, False, None, None)
    if pa.types.is_dictionary(data_type):
        # The dictionary's values bound the values the indices pick; a null
        # in the dictionary is a null wherever an index points at it.
        values = array.dictionary
        if values.null_count:
            null_count = None
        data_type = data_type.value_type
    elif not _exact_null_count(data_type):
        null_count = None
    index_nulls = array.null_count
    may_hold_null = null_count is None or null_count > 0
    may_hold_value = rows > index_nulls if null_count is None else rows > null_count
    may_hold_nan = False
    low = high = None
    if may_hold_value and pa.types.is_floating(data_type):
        may_hold_nan, low, high = _float_bounds(values)
    elif may_hold_value and bounded_type(data_type):
        extremes = pc.min_max(values)
        low, high = extremes["min"], extremes["max"]
        if not (low.is_valid and high.is_valid):
            low = high = None
    else:
        # No bound: whatever a filter asks of these values may hold.
        may_hold_nan = may_hold_value
    return _BatchColumn(rows, null_count, may_hold_null, may_hold_value, may_hold_nan, low, high)


def _float_bounds(values: pa.Array) -> tuple[bool, pa.Scalar | None, pa.Scalar | None]:
    """Whether floating-point ``values`` may hold NaN, and their bounds if they cannot.

    The sum is NaN when a value is NaN (or when infinities of both signs
    meet: then the batch is taken to hold NaN, which only costs bounds).
    Without NaN and nulls, numpy finds the bounds on the values' own buffer
    several times faster than ``min_max``'s NaN-aware kernel.
    """
    import pyarrow.compute as pc

    try:
        total = pc.sum(values).as_py()
    except pa.ArrowNotImplementedError:  # half floats: no sum kernel
        return True, None, None
    if total is None or math.isnan(total):
        return True, None, None
    if values.null_count == 0:
        view = values.to_numpy(zero_copy_only=True)
        return False, pa.scalar(view.min(), values.type), pa.scalar(view.max(), values.type)
    extremes = pc.min_max(values)
    low, high = extremes["min"], extremes["max"]
    if not (low.is_valid and high.is_valid):
        return False, None, None
    return False, low, high


@dataclass(frozen=True)
class ColumnStatistics:
    """The statistics of one column over batches ``0 .. n - 1``.

    Attributes
    ----------
    name : str
        The column.
    value_type : pyarrow.DataType
        The type of its values (a dictionary column's value type).
    rows : numpy.ndarray
        Rows of each batch (int64).
    null_count : pyarrow.Array
        Nulls of each batch (int64); null where they cannot be counted.
    low, high : pyarrow.Array
        Of ``value_type``: every non-null value of batch ``i`` lies in
        ``[low[i], high[i]]``; null where no bound is known (no value, NaN, an
        unordered type).
    may_hold_null, may_hold_value, may_hold_nan : numpy.ndarray
        Whether batch ``i`` may hold a null, a non-null value, a NaN (bool).
    """

    name: str
    value_type: pa.DataType
    rows: np.ndarray
    null_count: pa.Array
    low: pa.Array
    high: pa.Array
    may_hold_null: np.ndarray
    may_hold_value: np.ndarray
    may_hold_nan: np.ndarray

    @property
    def bounded(self) -> np.ndarray:
        """Whether batch ``i`` has a known bound for every non-null value (bool)."""
        return ~np.asarray(self.low.is_null(), dtype=bool)

    def __len__(self) -> int:
        return len(self.rows)


class _ColumnAccumulator:
    """The per-batch statistics of one column, extended as more batches are asked for."""

    def __init__(self, value_type: pa.DataType) -> None:
        self.value_type = value_type
        self.described: list[_BatchColumn] = []
        self.built: ColumnStatistics | None = None

    def extend(self, batches: Sequence[pa.RecordBatch], index: int) -> None:
        for batch in batches[len(self.described) :]:
            self.described.append(_describe(batch.column(index)))
        self.built = None

    def build(self, name: str, count: int) -> ColumnStatistics:
        built = self.built
        if built is not None and len(built) == count:
            return built
        described = self.described[:count]
        value_type = self.value_type
        try:
            low = pa.array([entry.low for entry in described], type=value_type)
            high = pa.array([entry.high for entry in described], type=value_type)
        except (pa.ArrowException, TypeError, ValueError):
            low = high = pa.nulls(len(described), type=value_type)
        built = ColumnStatistics(
            name=name,
            value_type=value_type,
            rows=np.array([entry.rows for entry in described], dtype=np.int64),
            null_count=pa.array([entry.null_count for entry in described], type=pa.int64()),
            low=low,
            high=high,
            may_hold_null=np.array([entry.may_hold_null for entry in described], dtype=bool),
            may_hold_value=np.array([entry.may_hold_value for entry in described], dtype=bool),
            may_hold_nan=np.array([entry.may_hold_nan for entry in described], dtype=bool),
        )
        if count == len(self.described):
            self.built = built
        return built


class BatchStatistics:
    """Per-batch statistics of a cache's columns, each computed once, when first asked for.

    Thread-safe. The batches passed in must be the cache's own, from batch 0
    in stream order (a snapshot of the cache, such as
    :func:`batchcorder._dataset.snapshot` returns): statistics are kept by
    batch index, and a batch at an index never changes.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [3, 1, None, 7]}).to_reader(max_chunksize=2))
    >>> batches = list(cache.reader())
    >>> x = cache.statistics.column("x", batches)
    >>> x.low.to_pylist(), x.high.to_pylist(), x.null_count.to_pylist()
    ([1, 7], [3, 7], [0, 1])
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Guarded by _lock: column name -> its accumulator. Statistics of a
        # batch, once appended, never change.
        self._columns: dict[str, _ColumnAccumulator] = {}

    def __reduce__(self) -> tuple[type[BatchStatistics], tuple[()]]:
        """Pickled empty: statistics are computed again, when asked for, where they are read."""
        return (BatchStatistics, ())

    def column(self, name: str, batches: Sequence[pa.RecordBatch]) -> ColumnStatistics | None:
        """The statistics of column ``name`` over ``batches``; None if no single column has that name.

        Parameters
        ----------
        name : str
            A top-level column of the cache's schema.
        batches : sequence of pyarrow.RecordBatch
            The cache's batches ``0 .. n - 1``; statistics of batches not
            seen before are computed now and kept.

        Returns
        -------
        ColumnStatistics or None
        """
        if not batches:
            return None
        schema = batches[0].schema
        index = schema.get_field_index(name)
        if index < 0:
            return None
        data_type = schema.field(index).type
        value_type = data_type.value_type if pa.types.is_dictionary(data_type) else data_type
        with self._lock:
            accumulator = self._columns.get(name)
            if accumulator is None or not accumulator.value_type.equals(value_type):
                accumulator = self._columns[name] = _ColumnAccumulator(value_type)
            if len(accumulator.described) < len(batches):
                accumulator.extend(batches, index)
            return accumulator.build(name, len(batches))

    @property
    def columns(self) -> list[str]:
        """The columns whose statistics have been computed so far.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1], "y": ["a"]}))
        >>> _ = cache.statistics.column("y", list(cache.reader()))
        >>> cache.statistics.columns
        ['y']
        """
        with self._lock:
            return list(self._columns)
