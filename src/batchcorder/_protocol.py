"""``Replayable``: what every engine adapter needs of a cache, and nothing more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    import pyarrow as pa

    from batchcorder._counters import CacheStats
    from batchcorder._scan.statistics import BatchStatistics

__all__ = ["BatchReader", "Replayable"]

_Reader = TypeVar("_Reader", bound="BatchReader")


class BatchReader(Protocol):
    """One pass over a :class:`Replayable`'s batches: what :meth:`Replayable.reader` returns.

    A ``StreamCacheReader`` or a ``pyarrow.RecordBatchReader``: an iterator of
    batches that casts, and closes on leaving a ``with`` block.
    """

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...

    def cast(self, target_schema: pa.Schema) -> pa.RecordBatchReader: ...

    def close(self) -> None: ...

    def __enter__(self: _Reader) -> _Reader: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class Replayable(Protocol):
    """A replayable Arrow stream with a schema: a :class:`~batchcorder.StreamCache` or a view of one.

    Every ``__arrow_c_stream__`` call and every :meth:`reader` starts a new,
    independent pass from batch 0. :class:`~batchcorder.StreamCache` and
    :class:`~batchcorder.CastingStreamCache` (``cache.cast(schema)``) both
    satisfy it, and the engine adapters accept anything that does.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import Replayable, StreamCache
    >>> cache = StreamCache(pa.table({"x": [1, 2]}))
    >>> isinstance(cache, Replayable), isinstance(cache.cast(cache.schema), Replayable)
    (True, True)
    >>> isinstance(pa.table({"x": [1]}), Replayable)  # one pass is not a replay
    False
    """

    @property
    def schema(self) -> pa.Schema:
        """The schema of every batch a reader returns."""

    @property
    def stats(self) -> CacheStats:
        """The counters of the underlying cache."""

    @property
    def closed(self) -> bool:
        """Whether the underlying cache is closed."""

    @property
    def upstream_exhausted(self) -> bool:
        """Whether the underlying cache's upstream has reported its end."""

    @property
    def max_readers(self) -> int | None:
        """The underlying cache's cap on readers ever created, or None."""

    @property
    def statistics(self) -> BatchStatistics:
        """Per-batch statistics of the batches this stream replays (computed when asked for)."""

    def reader(self) -> BatchReader:
        """A new pass over the batches from batch 0."""

    def ingest_all(self, progress: Callable[[int, int, int], object] | None = None) -> int:
        """Pull the rest of the upstream; return the number of batches."""

    def cast(self, target_schema: pa.Schema) -> Replayable:
        """A view whose readers cast every batch to ``target_schema``."""

    def close(self) -> None:
        """Close the underlying cache."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Export a new pass as an Arrow C stream."""

    def __arrow_c_schema__(self) -> object:
        """Export the schema as an Arrow C schema."""
