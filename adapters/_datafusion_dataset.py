"""The dataset DataFusion scans: ``get_fragments()``, then each part's ``scanner().to_batches()``.

DataFusion (``SessionContext.register_dataset``, 55) asks the dataset for
``scanner(columns=..., filter=...).projected_schema``, then for
``get_fragments(filter)``, one partition of its plan each, and reads every
fragment's ``scanner(schema, columns=..., filter=..., batch_size=...)``
``.to_batches()`` (``tests/adapters/test_engine_dataset_calls.py`` records
the calls). Here the "fragments" are runs of consecutive batches, each
streaming through :meth:`batchcorder._cache_dataset.CacheDataset.reader`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from batchcorder._adapter_kit import BatchStatistics, CacheDataset

if TYPE_CHECKING:
    from batchcorder._adapter_kit import Lifetime

__all__ = ["DataFusionDataset"]


class DataFusionDataset(CacheDataset):
    """A :class:`~batchcorder._cache_dataset.CacheDataset` split into parts, as DataFusion reads it.

    The batches a filter excludes are skipped, those it keeps whole pass as
    they are, nothing is copied for an unfiltered scan, and ``count(*)`` (no
    column) reads one row count per part.

    Parameters
    ----------
    batches, schema, statistics
        As :class:`~batchcorder._cache_dataset.CacheDataset`.
    parts : int
        Fragments, hence partitions of DataFusion's plan.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> batches = pa.table({"x": range(6)}).to_batches(max_chunksize=2)
    >>> data = DataFusionDataset(batches, batches[0].schema, BatchStatistics(), parts=2)
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

    def get_fragments(self, filter: pc.Expression | None = None) -> list[_Part]:
        """One part per partition, at least one: the filter is applied when each is scanned.

        Without rows there is still one (empty) part: DataFusion (55) cannot
        plan some scans of a dataset with no fragment (``ORDER BY`` fails its
        plan's sanity check), which it answers over an empty table.
        """
        self.check_open()
        parts = max(1, min(self._parts, self.batches_with_rows))
        return [_Part(self, (index, parts)) for index in range(parts)]


class _Part:
    """A run of consecutive batches of a :class:`DataFusionDataset`, read as a fragment."""

    def __init__(self, data: DataFusionDataset, part: tuple[int, int]) -> None:
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
        first, end = self._data.part_bounds(self._part)
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
