"""``StreamCache``: one upstream stream, pulled once, replayed by many readers."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import pyarrow as pa

from batchcorder._bounds import StreamBounds
from batchcorder._casting import CastingStreamCache
from batchcorder._closing import ClosesOnExit
from batchcorder._counters import CacheStats
from batchcorder._ingestion import Ingestion
from batchcorder._lifetime import Lifetime
from batchcorder._options import validate_flag, validate_options
from batchcorder._reader import StreamCacheReader, describe_schema
from batchcorder._reader_registry import ReaderRegistry
from batchcorder._replay import Replay
from batchcorder._scan.statistics import BatchStatistics
from batchcorder._storage import open_store
from batchcorder._upstream import open_upstream
from batchcorder.errors import CacheClosedError

__all__ = ["ProgressCallback", "StreamCache"]

#: Called as ``progress(ingested_batches, ingested_rows, ingested_bytes)``.
ProgressCallback = Callable[[int, int, int], object]


class StreamCache(ClosesOnExit):
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
        store = open_store(options, upstream.schema)
        try:
            bounds = StreamBounds()
            self._ingestion = Ingestion(
                upstream,
                store,
                bounds,
                defer_byte_count=store.keeps_every_batch and options.max_readers is None,
            )
            self._registry = ReaderRegistry(options.max_readers, store.drop, bounds)
            # The shared state every reader holds: its Lifetime releases the
            # store (and removes the cache file) once the last holder is gone.
            self._replay = Replay(self._ingestion, store, self._registry)
        except BaseException:
            # Even an interrupt here must not leave the file behind.
            store.close()
            raise
        self._store = store
        self._statistics = BatchStatistics()

    # -- public properties -------------------------------------------------

    @property
    def schema(self) -> pa.Schema:
        """The stream's schema, known before any batch is pulled."""
        return self._ingestion.schema

    @property
    def ingested_count(self) -> int:
        """Batches pulled from the upstream so far."""
        return self._ingestion.frontier

    @property
    def upstream_exhausted(self) -> bool:
        """Whether the upstream has reported its end."""
        return self._ingestion.exhausted

    @property
    def max_readers(self) -> int | None:
        """The cap on readers ever created, or None."""
        return self._registry.max_readers

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
    def complete_file(self) -> Path | None:
        """The cache file once it is one finished Arrow IPC file holding every batch, else None.

        Set in disk mode (``write_policy="on_insertion"``, no dictionary-encoded
        field) once the upstream is exhausted. Other processes can open it with
        ``pyarrow.ipc.open_file`` until the cache is closed.
        """
        return self._store.complete_file

    def __copy__(self) -> StreamCache:
        raise TypeError(
            "a StreamCache cannot be copied: share the object itself (it is thread-safe), "
            "or pickle a finished disk-mode cache to read it in another process"
        )

    def __deepcopy__(self, memo: dict[int, object]) -> StreamCache:
        return self.__copy__()

    @property
    def statistics(self) -> BatchStatistics:
        """Per-batch statistics of the cache's columns: bounds, null counts, NaN.

        Nothing is computed at ingestion: the statistics of a column are
        computed the first time a filtered scan asks for them (the DuckDB
        adapter, :func:`batchcorder.dataset`) and kept, so that later scans
        skip the batches their filter excludes without reading them.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [5, 1, 9]}).to_reader(max_chunksize=2))
        >>> cache.statistics.column("x", list(cache.reader())).high.to_pylist()
        [5, 9]
        """
        return self._statistics

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle support: a finished disk-mode cache travels as its file (see ``_sharing``)."""
        from batchcorder._sharing import reduce_cache

        return reduce_cache(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._ingestion.closed

    @property
    def _lifetime(self) -> Lifetime:
        """The cache's shared lifetime (see :func:`batchcorder._lifetime.lifetime_of`)."""
        return self._replay.lifetime

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
        batches, rows, nbytes = self._ingestion.counts()
        return CacheStats(
            ingested_batches=batches,
            ingested_rows=rows,
            ingested_bytes=nbytes,
            memory_batches=store.memory_batches,
            memory_bytes=store.memory_bytes,
            disk_batches=store.disk_batches,
            disk_bytes=store.disk_bytes,
            readers_created=self._registry.created,
            evicted_batches=self._registry.evicted_before,
            upstream_exhausted=self._ingestion.exhausted,
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
        TypeError
            If ``from_start`` is not a bool.
        CacheClosedError
            If the cache is closed.
        ReaderLimitError
            If ``max_readers`` readers were created already.
        BatchEvictedError
            If batch 0 has been evicted and ``from_start`` is True.

        All but the first are ``ValueError`` subclasses. Reading a batch that
        must come from a cache file another process truncated or changed
        raises ``CacheFileError`` (an ``OSError``); batches held in RAM are
        still served.

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
        start = validate_flag("from_start", from_start)
        self._replay.lifetime.check_open()
        admission = self._registry.admit(start, self._ingestion.frontier)
        new_reader = StreamCacheReader(
            self._replay, admission.position, admission.token, admission.tracked
        )
        if admission.tracked:
            # A reader dropped without close() must not hold batches back.
            weakref.finalize(new_reader, self._registry.finished, admission.token)
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
        return self._ingestion.schema.__arrow_c_schema__()

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
        ingestion = self._ingestion
        if progress is None:
            ingestion.pull_rest()
            return ingestion.frontier
        while True:
            if ingestion.closed:
                raise CacheClosedError()
            done = ingestion.exhausted  # read first: once set, the frontier is final
            position = ingestion.frontier
            if done or position > 0:
                progress(*ingestion.counts())
            if done:
                return position
            ingestion.wait_for(position)

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Release the upstream and the batches; remove the cache file.

        Idempotent. Later use of the cache or its readers raises
        :class:`~batchcorder.errors.CacheClosedError` (a ``ValueError``).

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1]}))
        >>> cache.close()
        >>> cache.reader()
        Traceback (most recent call last):
        ...
        batchcorder.errors.CacheClosedError: StreamCache is closed
        """
        self._replay.lifetime.close()

    def __len__(self) -> int:
        """The number of batches, once the upstream is exhausted.

        Raises
        ------
        TypeError
            While the stream is not fully ingested (as ``len()`` of an object
            without a length does), saying how to get there.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}).to_reader(max_chunksize=2))
        >>> len(cache)
        Traceback (most recent call last):
        ...
        TypeError: len() is not available until the stream is fully ingested; call ingest_all() first or check upstream_exhausted
        >>> cache.ingest_all(), len(cache)
        (2, 2)
        """
        ingestion = self._ingestion
        if not ingestion.exhausted:
            raise TypeError(
                "len() is not available until the stream is fully ingested; "
                "call ingest_all() first or check upstream_exhausted"
            )
        return ingestion.frontier

    def __repr__(self) -> str:
        """``StreamCache(ingested=N, exhausted=..., schema=...)``, plus the mode and whether closed.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> StreamCache(pa.table({"x": [1], "s": ["a"]}))
        StreamCache(ingested=0, exhausted=False, schema=x: int64, s: string, mode=memory)
        """
        ingestion = self._ingestion
        mode = "disk" if self._store.file_path is not None else "memory"
        closed = ", closed" if ingestion.closed else ""
        return (
            f"StreamCache(ingested={ingestion.frontier}, exhausted={ingestion.exhausted}, "
            f"schema={describe_schema(ingestion.schema)}, mode={mode}{closed})"
        )

    # -- the reference's constructors -----------------------------------------

    @classmethod
    def in_memory(
        cls, reader: Any, capacity: int | None = None, *, max_readers: int | None = None
    ) -> StreamCache:
        """A memory-mode cache: ``StreamCache(reader, memory_capacity=capacity, max_readers=...)``.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> with StreamCache.in_memory(pa.table({"x": [1, 2]})) as cache:
        ...     pa.table(cache).num_rows
        2
        """
        return cls(reader, memory_capacity=capacity, max_readers=max_readers)

    @classmethod
    def on_disk(
        cls,
        reader: Any,
        path: str | PathLike[str],
        disk_capacity: int,
        memory_capacity: int | None = None,
        *,
        write_policy: str = "on_insertion",
        max_readers: int | None = None,
    ) -> StreamCache:
        """A disk-mode cache: the file in directory ``path``, at most ``disk_capacity`` bytes.

        The same as ``StreamCache(reader, memory_capacity, path, disk_capacity,
        write_policy, max_readers)``.

        Examples
        --------
        >>> import tempfile
        >>> import pyarrow as pa
        >>> from batchcorder import StreamCache
        >>> with StreamCache.on_disk(pa.table({"x": [1, 2]}), tempfile.mkdtemp(), 1 << 20) as cache:
        ...     pa.table(cache).num_rows, cache.disk_file is not None
        (2, True)
        """
        return cls(
            reader,
            memory_capacity=memory_capacity,
            disk_path=path,
            disk_capacity=disk_capacity,
            write_policy=write_policy,
            max_readers=max_readers,
        )
