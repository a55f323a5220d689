"""``StreamCacheReader``: one independent pass over a cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa

from batchcorder._bounds import StreamBounds
from batchcorder._closing import ClosesOnExit
from batchcorder.errors import CacheClosedError, ReaderConsumedError

__all__ = ["ReaderSource", "StreamCacheReader", "describe_schema"]


class ReaderSource(Protocol):
    """What a reader needs of its cache: the contract behind the lock-free read.

    The hot path reads ``bounds`` and calls ``get``, and nothing else: batch
    ``i`` with ``bounds.evicted_before <= i < bounds.frontier`` and not
    ``bounds.closed`` is in the store, and ``get(i)`` returns it without
    blocking or taking a lock (or raises KeyError/IndexError if it was evicted
    or closed meanwhile). Those values only move one way, so a stale read
    only sends the reader to ``fetch``, which waits, pulls or raises the
    stream's errors.
    """

    schema: pa.Schema
    bounds: StreamBounds

    def get(self, position: int) -> pa.RecordBatch:
        """Batch ``position`` from the store; KeyError/IndexError if it is not there."""

    def fetch(self, position: int) -> pa.RecordBatch | None:
        """Batch ``position``, pulling up to it if needed; None past the end of the stream."""

    def all_from(self, position: int) -> list[pa.RecordBatch] | None:
        """Every batch from ``position`` on, if all are stored for good; else None."""

    def moved(self, token: int, position: int) -> None:
        """A tracked reader will read ``position`` next."""

    def finished(self, token: int) -> None:
        """A tracked reader is done."""


class StreamCacheReader(ClosesOnExit):
    """An iterator of ``pyarrow.RecordBatch`` over a :class:`StreamCache`.

    Readers are created by :meth:`StreamCache.reader`; each keeps its own
    position. Exporting a reader with ``__arrow_c_stream__`` (or :meth:`cast`)
    hands its remaining batches to the consumer: the reader itself is then
    consumed.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}).to_reader(max_chunksize=2))
    >>> reader = cache.reader()
    >>> [batch.num_rows for batch in reader]
    [2, 1]
    >>> reader = cache.reader()
    >>> pa.RecordBatchReader.from_stream(reader).read_all().num_rows
    3
    >>> next(reader)
    Traceback (most recent call last):
    ...
    batchcorder.errors.ReaderConsumedError: Reader already consumed: an Arrow stream export took its batches; create a new one with StreamCache.reader()
    """

    def __init__(self, source: ReaderSource, position: int, token: int, tracked: bool) -> None:
        self._source = source
        self._bounds = source.bounds
        self._get = source.get
        # Index of the next batch to return.
        self._position = position
        # Who this reader is to the cache, and whether it reports its moves
        # (max_readers eviction).
        self._token = token
        self._tracked = tracked
        self._consumed = False
        self._closed = False
        self._released = False

    @property
    def schema(self) -> pa.Schema:
        """The cache's schema; ``ReaderConsumedError`` once an export consumed the reader."""
        if self._consumed:
            raise ReaderConsumedError()
        return self._source.schema

    @property
    def closed(self) -> bool:
        """Whether the reader was closed or consumed by an export (not merely read to the end)."""
        return self._closed or self._consumed

    def __iter__(self) -> StreamCacheReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._consumed:
            raise ReaderConsumedError()
        return self._advance()

    def read_next_batch(self) -> pa.RecordBatch:
        """Return the next batch; raise StopIteration at the end."""
        return self.__next__()

    def read_all(self) -> pa.Table:
        """Read the remaining batches into a ``pyarrow.Table``."""
        return pa.Table.from_batches(list(self), schema=self.schema)

    def _advance(self) -> pa.RecordBatch:
        # The hot path: a stored batch costs three reads, one lookup, no lock
        # (the ReaderSource contract).
        position = self._position
        bounds = self._bounds
        if bounds.evicted_before <= position < bounds.frontier and not (
            self._closed or bounds.closed
        ):
            try:
                batch = self._get(position)
            except (KeyError, IndexError):
                batch = self._slow_batch(position)
        else:
            batch = self._slow_batch(position)
        self._position = position + 1
        if self._tracked:
            self._source.moved(self._token, position + 1)
        return batch

    def _slow_batch(self, position: int) -> pa.RecordBatch:
        if self._closed:
            raise StopIteration
        batch = self._source.fetch(position)
        if batch is None:
            # At the end: nothing is kept for this reader any more, but it is
            # not closed (as in the reference, ``closed`` stays False).
            self._release()
            raise StopIteration
        return batch

    def _export(self) -> pa.RecordBatchReader:
        if self._consumed:
            raise ReaderConsumedError()
        self._consumed = True
        remaining = self._source.all_from(self._position)
        if remaining is not None:
            # Everything is cached and nothing will be evicted: hand the batches
            # over at once, each checked against close() as it is read.
            self._position += len(remaining)
            self.close()
            return pa.RecordBatchReader.from_batches(
                self._source.schema, _until_closed(remaining, self._source.bounds)
            )
        # iter(callable, sentinel) ends when _advance raises StopIteration.
        return pa.RecordBatchReader.from_batches(self._source.schema, iter(self._advance, None))

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Export the remaining batches as an Arrow C stream; consumes the reader."""
        return self._export().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> object:
        """Export the schema as an Arrow C schema capsule."""
        return self.schema.__arrow_c_schema__()

    def cast(self, target_schema: pa.Schema) -> pa.RecordBatchReader:
        """Return a ``pyarrow.RecordBatchReader`` of the remaining batches cast
        to ``target_schema``; consumes this reader.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1, 2]}))
        >>> cache.reader().cast(pa.schema([("x", pa.string())])).read_all().column(0)
        <pyarrow.lib.ChunkedArray object at ...>
        [
          [
            "1",
            "2"
          ]
        ]
        """
        if not isinstance(target_schema, pa.Schema):
            raise TypeError(
                f"target_schema must be a pyarrow.Schema, got {type(target_schema).__name__}"
            )
        return self._export().cast(target_schema)

    def close(self) -> None:
        """Stop reading; with ``max_readers``, batches are no longer kept for this reader."""
        if self._closed:
            return
        self._closed = True
        self._release()

    def _release(self) -> None:
        """Tell the cache (``max_readers``) that no batch needs keeping for this reader; once."""
        if self._tracked and not self._released:
            self._released = True
            self._source.finished(self._token)

    def __repr__(self) -> str:
        return (
            f"StreamCacheReader(closed={self.closed}, position={self._position}, "
            f"schema={describe_schema(self._source.schema)})"
        )


def describe_schema(schema: pa.Schema) -> str:
    """``name: type, ...`` on one line.

    Examples
    --------
    >>> import pyarrow as pa
    >>> describe_schema(pa.schema([("x", pa.int64()), ("s", pa.string())]))
    'x: int64, s: string'
    """
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def _until_closed(batches: list[pa.RecordBatch], bounds: StreamBounds) -> Iterator[pa.RecordBatch]:
    """``batches`` in order, each let go once read, until the cache is closed.

    After ``close()`` the next read raises :class:`CacheClosedError`, as it
    does from a reader, and the batches not read are let go with the stream.
    """
    batches.reverse()
    while batches:
        if bounds.closed:
            batches.clear()
            raise CacheClosedError()
        yield batches.pop()
