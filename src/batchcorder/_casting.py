"""``CastingStreamCache``: a replayable view that casts every batch on read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from batchcorder._cache import StreamCache

__all__ = ["CastingStreamCache"]


class CastingStreamCache:
    """A view of a :class:`StreamCache` whose readers cast to one schema.

    Created by :meth:`StreamCache.cast`. Like the cache, every
    ``__arrow_c_stream__`` call is a fresh reader from batch 0.

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
    """

    def __init__(self, cache: StreamCache, target_schema: pa.Schema) -> None:
        if not isinstance(target_schema, pa.Schema):
            raise TypeError(
                f"target_schema must be a pyarrow.Schema, got {type(target_schema).__name__}"
            )
        if target_schema.names != cache.schema.names:
            raise ValueError(
                "target_schema must have the cache's field names "
                f"{cache.schema.names}, got {target_schema.names}"
            )
        self._cache = cache
        self._schema = target_schema

    @property
    def schema(self) -> pa.Schema:
        """The schema every batch is cast to."""
        return self._schema

    def reader(self) -> pa.RecordBatchReader:
        """A new ``pyarrow.RecordBatchReader`` of cast batches from batch 0."""
        return self._cache.reader().cast(self._schema)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return iter(self.reader())

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Export a new reader of cast batches from batch 0."""
        return self.reader().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> object:
        """Export the target schema as an Arrow C schema capsule."""
        return self._schema.__arrow_c_schema__()

    def cast(self, target_schema: pa.Schema) -> CastingStreamCache:
        """Return a view casting the original batches to ``target_schema`` instead."""
        return CastingStreamCache(self._cache, target_schema)
