"""The dataset DuckDB scans: ``scanner(columns=, filter=)``, then ``to_reader()``.

DuckDB (2.0) reads a registered pyarrow dataset through its ``schema`` and
``scanner(columns=..., filter=...)``, and reads only that scan's
``to_reader()`` (``tests/adapters/test_engine_dataset_calls.py`` records the
calls). The scan here streams the cache's batches as a plain reader
(:meth:`batchcorder._cache_dataset.CacheDataset.reader`): no per-batch scan
task, the batches a filter excludes skipped, those it keeps whole passed as
they are. Any other use of the scan is a pyarrow ``Scanner``'s.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from batchcorder._adapter_kit import CacheDataset

__all__ = ["DuckDBDataset"]


class DuckDBDataset(CacheDataset):
    """A :class:`~batchcorder._cache_dataset.CacheDataset` whose ``scanner()`` streams.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> from batchcorder._adapter_kit import BatchStatistics
    >>> batches = pa.table({"x": range(6), "y": list("abcdef")}).to_batches(max_chunksize=2)
    >>> data = DuckDBDataset(batches, batches[0].schema, BatchStatistics())
    >>> scan = data.scanner(columns=["y"], filter=ds.field("x") >= 3)
    >>> scan.to_reader().read_all().column("y").to_pylist()
    ['d', 'e', 'f']
    >>> scan.count_rows()
    3
    """

    def pyarrow_scanner(self, columns: Any, filter: pc.Expression | None, **options: Any) -> Any:
        """A scan whose ``to_reader()`` streams the batches; a ``Scanner`` for other arguments."""
        plain_columns = columns is None or (
            isinstance(columns, list) and all(isinstance(name, str) for name in columns)
        )
        if not self.holds_batches or options or not plain_columns:
            return super().pyarrow_scanner(columns, filter, **options)
        return _DuckDBScan(self, columns, filter)


class _DuckDBScan:
    """One scan of a :class:`DuckDBDataset`: ``to_reader()`` streams, the rest is a ``Scanner``'s."""

    def __init__(
        self, data: DuckDBDataset, columns: list[str] | None, filter: pc.Expression | None
    ) -> None:
        self._data = data
        self._columns = columns
        self._filter = filter

    def to_reader(self) -> pa.RecordBatchReader:
        """The scan's rows as a reader over the cache's batches."""
        return self._data.rewritten_reader(self._columns, self._filter)

    @property
    def projected_schema(self) -> pa.Schema:
        """The schema of the scan's batches, as pyarrow's scanner gives it."""
        empty = ds.InMemoryDataset([], schema=self._data.schema)
        return empty.scanner(columns=self._columns, filter=self._filter).projected_schema

    def __getattr__(self, name: str) -> Any:
        # Whatever DuckDB does not call (count_rows, head, to_table, ...): a
        # pyarrow Scanner over the batches the filter may keep.
        scanner = CacheDataset.pyarrow_scanner(self._data, self._columns, self._filter)
        return getattr(scanner, name)
