"""``CastingStreamCache``: a replayable view that casts every batch on read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from batchcorder._scan.statistics import BatchStatistics

if TYPE_CHECKING:
    from batchcorder._counters import CacheStats
    from batchcorder._lifetime import Lifetime
    from batchcorder._protocol import Replayable

__all__ = ["CastingStreamCache"]


class CastingStreamCache:
    """A view of a :class:`StreamCache` whose readers cast to one schema.

    Created by :meth:`StreamCache.cast`. Like the cache, every
    ``__arrow_c_stream__`` call is a fresh reader from batch 0, and it stands
    in for the cache wherever one is taken (:class:`~batchcorder.Replayable`):
    :meth:`ingest_all`, :attr:`stats`, :attr:`closed` and :meth:`close` are the
    cache's own.

    A ``target_schema`` that is not a ``pyarrow.Schema`` is refused at once
    (``TypeError``). Whether its field names match the cache's is checked when
    the view is read, as in batchcorder 0.1.3: creating (and registering) the
    view succeeds, and :meth:`reader`, iteration and ``__arrow_c_stream__``
    raise ``ValueError("Target schema's field names are not matching the
    table's field names: ...")``, before taking a reader of the cache.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1, 2]}))
    >>> as_float = cache.cast(pa.schema([("x", pa.float64())]))
    >>> [batch.column(0).type for batch in as_float]
    [DataType(double)]
    >>> pa.table(as_float).column("x").to_pylist()
    [1.0, 2.0]
    >>> renamed = cache.cast(pa.schema([("y", pa.int64())]))  # no error yet
    >>> renamed.reader()
    Traceback (most recent call last):
    ...
    ValueError: Target schema's field names are not matching the table's field names: ['x'], ['y']
    """

    def __init__(self, cache: Replayable, target_schema: pa.Schema) -> None:
        if not isinstance(target_schema, pa.Schema):
            raise TypeError(
                f"target_schema must be a pyarrow.Schema, got {type(target_schema).__name__}"
            )
        self._cache = cache
        self._schema = target_schema
        # The view replays other values than the cache holds (cast anew each
        # time, but the same values for the same batch): statistics of its own.
        self._statistics = BatchStatistics()

    @property
    def _lifetime(self) -> Lifetime:
        """The lifetime of the cache this view reads."""
        from batchcorder._lifetime import lifetime_of

        return lifetime_of(self._cache)

    @property
    def schema(self) -> pa.Schema:
        """The schema every batch is cast to."""
        return self._schema

    def reader(self) -> pa.RecordBatchReader:
        """A new ``pyarrow.RecordBatchReader`` of cast batches from batch 0.

        Raises
        ------
        ValueError
            If the target schema's field names are not the cache's; no reader
            of the cache is taken then.
        """
        names = self._cache.schema.names
        if self._schema.names != names:
            # The message of pyarrow's own cast, which batchcorder 0.1.3 raised too.
            raise ValueError(
                "Target schema's field names are not matching the table's field names: "
                f"{names}, {self._schema.names}"
            )
        return self._cache.reader().cast(self._schema)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return iter(self.reader())

    @property
    def stats(self) -> CacheStats:
        """The counters of the cache this view reads."""
        return self._cache.stats

    @property
    def upstream_exhausted(self) -> bool:
        """Whether the upstream of the cache this view reads has reported its end."""
        return self._cache.upstream_exhausted

    @property
    def max_readers(self) -> int | None:
        """The cap on readers of the cache this view reads, or None."""
        return self._cache.max_readers

    @property
    def statistics(self) -> BatchStatistics:
        """Per-batch statistics of the batches this view replays, shared by its datasets."""
        return self._statistics

    @property
    def closed(self) -> bool:
        """Whether the cache this view reads is closed."""
        return self._cache.closed

    def ingest_all(self, progress: Callable[[int, int, int], object] | None = None) -> int:
        """Pull the rest of the cache's upstream (see :meth:`StreamCache.ingest_all`)."""
        return self._cache.ingest_all(progress)

    def close(self) -> None:
        """Close the cache this view reads, and so every view of it."""
        self._cache.close()

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Export a new reader of cast batches from batch 0."""
        return self.reader().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> object:
        """Export the target schema as an Arrow C schema capsule."""
        return self._schema.__arrow_c_schema__()

    def __repr__(self) -> str:
        from batchcorder._reader import describe_schema

        return f"CastingStreamCache(schema={describe_schema(self._schema)})"

    def cast(self, target_schema: pa.Schema) -> CastingStreamCache:
        """Return a view casting the original batches to ``target_schema`` instead."""
        return CastingStreamCache(self._cache, target_schema)
