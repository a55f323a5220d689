"""``StreamCache``: one upstream stream, pulled once, replayed by many readers."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batchcorder._options import validate_options
from batchcorder._reader import StreamCacheReader
from batchcorder._stats import CacheStats
from batchcorder._storage import BatchStore, DiskStore, MemoryStore
from batchcorder._upstream import open_upstream

if TYPE_CHECKING:
    from batchcorder._casting import CastingStreamCache

__all__ = ["ProgressCallback", "StreamCache"]

#: Called as ``progress(ingested_batches, ingested_rows, ingested_bytes)``.
ProgressCallback = Callable[[int, int, int], object]


def _closed_error() -> ValueError:
    return ValueError("StreamCache is closed")


def _as_recorded_failure(failure: BaseException, position: int) -> BaseException:
    """What later readers get for a pull that ended in ``failure``.

    An exception of the upstream (or the store) is kept as it is. An interrupt
    (KeyboardInterrupt, SystemExit) belongs to the interrupted thread only;
    the others learn that the stream cannot go on, since whether the upstream
    lost a batch is unknown.
    """
    if isinstance(failure, Exception):
        return failure
    error = RuntimeError(
        f"ingestion of batch {position} was interrupted ({type(failure).__name__}); "
        f"the cache holds batches 0 to {position - 1} and cannot read further"
    )
    error.__cause__ = failure
    return error


def _release(upstream: pa.RecordBatchReader | None) -> None:
    close = getattr(upstream, "close", None)
    if close is not None:
        close()


class StreamCache:
    """A replayable cache over a one-shot Arrow stream.

    The upstream is pulled lazily and exactly once, in order, only as far as
    the furthest reader has asked. Every reader (and every
    ``__arrow_c_stream__`` call) replays the stream from batch 0,
    independently of the others, from any thread.

    Parameters
    ----------
    reader : object implementing ``__arrow_c_stream__``
        The upstream: a ``pyarrow.RecordBatchReader`` or ``Table``, a Polars
        DataFrame, a DuckDB relation, a DataFusion DataFrame, ...
    memory_capacity : int, optional
        Disk mode only: bytes of recently ingested batches kept in RAM (the hot
        layer). Defaults to the machine's total physical RAM. Has no effect in
        memory mode, which keeps every batch.
    disk_path : str or os.PathLike, optional
        Directory for the cache file (created if missing). Give it together
        with ``disk_capacity`` to enable disk mode.
    disk_capacity : int, optional
        Bytes the cache file may grow to; checked before every write.
    write_policy : {"on_insertion", "on_eviction"}, default "on_insertion"
        Disk mode: write each batch when it is ingested, or only when it
        leaves the hot layer.
    max_readers : int, optional
        Hard cap on the readers ever created. Once all of them exist, batches
        every live reader has moved past are freed.

    Raises
    ------
    TypeError
        If ``reader`` is not an Arrow stream, or an argument has the wrong type.
    ValueError
        If an argument has a bad value (naming it).

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> table = pa.table({"x": [1, 2, 3, 4]})
    >>> cache = StreamCache(table.to_reader(max_chunksize=2))
    >>> cache.ingested_count  # nothing pulled yet
    0
    >>> pa.table(cache).column("x").to_pylist()
    [1, 2, 3, 4]
    >>> pa.table(cache).num_rows  # replayed from the cache
    4
    >>> cache.ingested_count, cache.upstream_exhausted
    (2, True)
    """

    def __init__(
        self,
        reader: Any,
        memory_capacity: int | None = None,
        disk_path: str | PathLike[str] | None = None,
        disk_capacity: int | None = None,
        write_policy: str = "on_insertion",
        max_readers: int | None = None,
    ) -> None:
        options = validate_options(
            memory_capacity, disk_path, disk_capacity, write_policy, max_readers
        )
        upstream = open_upstream(reader)
        self._schema: pa.Schema = upstream.schema
        self._max_readers = options.max_readers
        store: BatchStore
        if options.disk_path is not None and options.disk_capacity is not None:
            store = DiskStore(
                options.disk_path,
                self._schema,
                options.memory_capacity,
                options.disk_capacity,
                options.write_policy,
            )
        else:
            store = MemoryStore()
        self._store = store
        try:
            # Removes the cache file even if close() is never called.
            self._finalizer = weakref.finalize(self, store.close)
        except BaseException:
            store.close()
            raise

        # One lock; the condition shares it. Where an interrupt could land
        # between claiming and publishing a pull, the code takes the raw lock:
        # its C-level enter/exit runs no Python code an interrupt could stop.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # State guarded by the lock. Invariants:
        # - batches [_evicted_before, _frontier) are in the store;
        # - at most one thread pulls from the upstream: the one that set _ingesting;
        # - _failure, once set, is what every reader reaching _frontier gets;
        # - _upstream is None once exhausted, failed or closed.
        # Readers read _frontier and _evicted_before without the lock: both only grow.
        self._upstream: pa.RecordBatchReader | None = upstream
        self._frontier = 0
        self._evicted_before = 0
        self._ingesting = False
        self._exhausted = False
        self._failure: BaseException | None = None
        # The failure's own traceback (re-raising must not grow it) and the
        # batch it stopped at.
        self._failure_traceback: TracebackType | None = None
        self._failure_position = 0
        self._closed = False
        self._readers_created = 0
        self._ingested_rows = 0
        self._ingested_bytes = 0
        self._live_readers: weakref.WeakSet[StreamCacheReader] = weakref.WeakSet()

    # -- public properties -------------------------------------------------

    @property
    def schema(self) -> pa.Schema:
        """The stream's schema, known before any batch is pulled."""
        return self._schema

    @property
    def ingested_count(self) -> int:
        """Batches pulled from the upstream so far."""
        return self._frontier

    @property
    def upstream_exhausted(self) -> bool:
        """Whether the upstream has reported its end."""
        return self._exhausted

    @property
    def max_readers(self) -> int | None:
        """The cap on readers ever created, or None."""
        return self._max_readers

    @property
    def disk_file(self) -> Path | None:
        """Path of the cache file in disk mode (removed on close), else None.

        Once the upstream is exhausted it is a complete Arrow IPC file, except
        for schemas with dictionary-encoded fields, which the IPC file format
        cannot hold when dictionaries change between batches: those are stored
        as consecutive IPC streams, one per batch. With
        ``write_policy="on_eviction"`` it holds only the batches that left the
        hot layer.
        """
        return self._store.file_path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the cache's counters.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1, 2]}))
        >>> _ = cache.reader().read_all()
        >>> cache.stats.readers_created, cache.stats.memory_batches
        (1, 1)
        """
        store = self._store
        with self._cond:
            return CacheStats(
                ingested_batches=self._frontier,
                ingested_rows=self._ingested_rows,
                ingested_bytes=self._ingested_bytes,
                memory_batches=store.memory_batches,
                memory_bytes=store.memory_bytes,
                disk_batches=store.disk_batches,
                disk_bytes=store.disk_bytes,
                readers_created=self._readers_created,
                evicted_batches=self._evicted_before,
                upstream_exhausted=self._exhausted,
            )

    # -- readers -----------------------------------------------------------

    def reader(self, from_start: bool = True) -> StreamCacheReader:
        """Return a new, independent reader.

        Parameters
        ----------
        from_start : bool, default True
            Start at batch 0; if False, start at the ingestion frontier (the
            first batch not yet pulled from the upstream).

        Raises
        ------
        ValueError
            If the cache is closed, ``max_readers`` readers exist already, or
            batch 0 has been evicted and ``from_start`` is True.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}).to_reader(max_chunksize=1))
        >>> first = cache.reader()
        >>> next(first).column(0).to_pylist()
        [1]
        >>> late = cache.reader(from_start=False)
        >>> [batch.column(0)[0].as_py() for batch in late]
        [2, 3]
        """
        with self._cond:
            if self._closed:
                raise _closed_error()
            limit = self._max_readers
            if limit is not None and self._readers_created >= limit:
                raise ValueError(
                    f"Maximum number of readers ({limit}) reached: max_readers caps the "
                    "readers ever created, and closing a reader does not free a slot"
                )
            if from_start:
                if self._evicted_before > 0:
                    raise ValueError(
                        "cannot read from the start: batch 0 was evicted because every "
                        "reader had moved past it (max_readers); use from_start=False"
                    )
                position = 0
            else:
                position = self._frontier
            self._readers_created += 1
            new_reader = StreamCacheReader(self, position, tracked=limit is not None)
            if limit is not None:
                self._live_readers.add(new_reader)
            return new_reader

    def __iter__(self) -> StreamCacheReader:
        """Iterate the batches with a new reader from batch 0."""
        return self.reader()

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Export a new reader from batch 0 as an Arrow C stream capsule.

        Every call is a fresh, independent reader, so an engine can scan the
        cache any number of times.
        """
        return self.reader().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> object:
        """Export the schema as an Arrow C schema capsule."""
        return self._schema.__arrow_c_schema__()

    def cast(self, target_schema: pa.Schema) -> CastingStreamCache:
        """Return a replayable view that casts every batch to ``target_schema``.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1, 2]}))
        >>> pa.table(cache.cast(pa.schema([("x", pa.float64())]))).schema
        x: double
        """
        from batchcorder._casting import CastingStreamCache

        return CastingStreamCache(self, target_schema)

    # -- ingestion ---------------------------------------------------------

    def ingest_all(self, progress: ProgressCallback | None = None) -> int:
        """Pull the rest of the upstream into the cache; return the batch count.

        Idempotent; the upstream is released once exhausted.

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(ingested_batches, ingested_rows, ingested_bytes)``
            after each batch, and once more at the end.

        Raises
        ------
        Exception
            The upstream's own exception if it fails (batches before the
            failure stay readable), or :class:`~batchcorder.errors.DiskCapacityError`.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": range(10)}).to_reader(max_chunksize=4))
        >>> cache.ingest_all()
        3
        >>> seen = []
        >>> cache.ingest_all(lambda batches, rows, nbytes: seen.append(rows))
        3
        >>> seen
        [10]
        """
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable, got {type(progress).__name__}")
        while True:
            with self._cond:
                if self._closed:
                    raise _closed_error()
                position = self._frontier
                done = self._exhausted
                counts = (position, self._ingested_rows, self._ingested_bytes)
            if progress is not None and (done or position > 0):
                progress(*counts)
            if done:
                return position
            self._batch_at(position, load=False)

    def _batch_at(self, position: int, load: bool = True) -> pa.RecordBatch | None:
        """Batch ``position``, pulling it from the upstream if it is next; None at the end.

        An interrupt (KeyboardInterrupt from a signal handler) may land at any
        call boundary: the claim of the pull, the pull and its publication all
        sit in one try, and the publication is plain stores under the raw lock
        (no Python-level call before _ingesting is reset).
        """
        lock = self._lock
        pull = False
        upstream = None
        batch: pa.RecordBatch | None = None
        failure: BaseException | None = None
        try:
            with lock:
                while True:
                    if self._closed:
                        raise _closed_error()
                    if position < self._frontier:
                        if position < self._evicted_before:
                            raise ValueError(
                                f"batch {position} was evicted (max_readers): every reader "
                                "had moved past it"
                            )
                        break
                    if self._failure is not None:
                        recorded = self._failure
                        if isinstance(recorded, Exception):
                            # Each raise starts again from the upstream's own traceback.
                            raise recorded.with_traceback(self._failure_traceback)
                        raise _as_recorded_failure(recorded, self._failure_position)
                    if self._exhausted:
                        return None
                    if not self._ingesting:
                        pull = True
                        self._ingesting = True
                        upstream = self._upstream
                        break
                    # A timeout, so that a notify lost to an interrupt only delays.
                    self._cond.wait(0.05)
            if not pull:
                return self._stored(position) if load else None
            if upstream is None:
                raise _closed_error()
            try:
                batch = upstream.read_next_batch()
            except StopIteration:
                batch = None
            if batch is None:
                self._store.finish()
            else:
                self._store.append(position, batch)
            return batch
        except BaseException as error:
            failure = error
            raise
        finally:
            if pull:
                with lock:
                    self._ingesting = False
                    if failure is not None:
                        if not self._closed and self._failure is None:
                            self._failure = failure
                            self._failure_traceback = failure.__traceback__
                            self._failure_position = position
                    elif self._closed:
                        pass
                    elif batch is None:
                        self._exhausted = True
                    else:
                        self._frontier += 1
                        self._ingested_rows += batch.num_rows
                        self._ingested_bytes += batch.nbytes
                    done = failure is not None or batch is None or self._closed
                    if done:
                        self._upstream = None
                    self._cond.notify_all()
                if done:
                    _release(upstream)

    def _all_cached_from(self, position: int) -> list[pa.RecordBatch] | None:
        """Batches ``position`` to the end, if the upstream is exhausted and no
        batch can be evicted; otherwise None (the caller streams lazily)."""
        if self._max_readers is not None or not self._exhausted or self._closed:
            return None
        get = self._store.get
        try:
            return [get(index) for index in range(position, self._frontier)]
        except (KeyError, IndexError):
            return None  # closed meanwhile: the lazy path reports it

    def _stored(self, position: int) -> pa.RecordBatch:
        try:
            return self._store.get(position)
        except (KeyError, IndexError):
            if self._closed:
                raise _closed_error() from None
            raise

    # -- max_readers eviction ----------------------------------------------

    def _release_behind_readers(self) -> None:
        """Drop the batches every live reader has moved past (max_readers only)."""
        with self._cond:
            if self._max_readers is None or self._readers_created < self._max_readers:
                return
            slowest = min((live._position for live in self._live_readers), default=self._frontier)
            end = min(slowest, self._frontier)
            for position in range(self._evicted_before, end):
                self._store.drop(position)
            self._evicted_before = max(self._evicted_before, end)

    def _reader_finished(self, finished: StreamCacheReader) -> None:
        with self._cond:
            self._live_readers.discard(finished)
        self._release_behind_readers()

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Release the upstream and the batches; remove the cache file.

        Idempotent. Later use of the cache or its readers raises ValueError.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1]}))
        >>> cache.close()
        >>> cache.reader()
        Traceback (most recent call last):
        ...
        ValueError: StreamCache is closed
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            upstream = None if self._ingesting else self._upstream
            if upstream is not None:
                self._upstream = None
            self._cond.notify_all()
        self._finalizer()
        _release(upstream)

    def __enter__(self) -> StreamCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "disk" if self._store.file_path is not None else "memory"
        state = "closed" if self._closed else f"{self._frontier} batches ingested"
        return f"<StreamCache {mode} mode, {state}, schema: {self._schema.names}>"
