"""What a reader sees of its cache: the one interface between the two.

:class:`Replay` implements :class:`~batchcorder._reader.ReaderSource` over a
cache's ingestion, store and reader registry. The reader's hot path reads
:attr:`Replay.bounds` and calls :attr:`Replay.get` only: no lock, because
the bounds only move one way (see :class:`~batchcorder._bounds.StreamBounds`).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from batchcorder._bounds import StreamBounds
from batchcorder._ingestion import Ingestion
from batchcorder._lifetime import Lifetime
from batchcorder._reader_registry import ReaderRegistry
from batchcorder._storage import BatchStore
from batchcorder.errors import BatchEvictedError, CacheClosedError, CacheFileError

__all__ = ["Replay"]


class Replay:
    """Batches by position for the readers of one cache.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder._storage import MemoryStore
    >>> store, bounds = MemoryStore(), StreamBounds()
    >>> ingestion = Ingestion(pa.table({"x": [1, 2]}).to_reader(max_chunksize=1), store, bounds)
    >>> replay = Replay(ingestion, store, ReaderRegistry(None, store.drop, bounds))
    >>> replay.cached(0) is None  # not pulled yet
    True
    >>> replay.fetch(0).num_rows, replay.cached(0).num_rows, replay.fetch(2)
    (1, 1, None)
    """

    def __init__(self, ingestion: Ingestion, store: BatchStore, registry: ReaderRegistry) -> None:
        if ingestion.bounds is not registry.bounds:
            raise ValueError("the ingestion and the registry must share one StreamBounds")
        self.schema: pa.Schema = ingestion.schema
        self.bounds: StreamBounds = ingestion.bounds
        self.get: Callable[[int], pa.RecordBatch] = store.get
        self._ingestion = ingestion
        self._store = store
        self._registry = registry
        #: Held by every reader through this object: the store outlives the
        #: StreamCache handle for as long as a reader (or an export) needs it.
        self.lifetime = Lifetime(ingestion.bounds, ingestion.close, store.close)

    def cached(self, position: int) -> pa.RecordBatch | None:
        """Batch ``position`` if it is in the store now, else None; never blocks.

        What the reader's hot path does inline, with :attr:`bounds` and :attr:`get`.
        """
        bounds = self.bounds
        if bounds.evicted_before <= position < bounds.frontier and not bounds.closed:
            try:
                return self.get(position)
            except (KeyError, IndexError):
                return None  # dropped or closed meanwhile: fetch() says which
        return None

    def fetch(self, position: int) -> pa.RecordBatch | None:
        """Batch ``position``, pulling the upstream up to it if needed; None past the end.

        Raises the stream's recorded failure, :class:`CacheClosedError` or
        :class:`BatchEvictedError`.
        """
        if position < self._registry.evicted_before:
            raise BatchEvictedError(position)
        if not self._ingestion.wait_for(position):
            return None
        try:
            return self._store.get(position)
        except (KeyError, IndexError):
            if self._ingestion.closed:
                raise CacheClosedError() from None
            if position < self._registry.evicted_before:
                raise BatchEvictedError(position) from None
            raise

    def all_from(self, position: int) -> list[pa.RecordBatch] | None:
        """Batches ``position`` to the end if all are stored and none can be evicted, else None."""
        ingestion = self._ingestion
        if self._registry.max_readers is not None or not ingestion.exhausted or ingestion.closed:
            return None
        try:
            self._store.check_file()
        except CacheFileError:
            return None  # the lazy path serves what is in RAM and refuses the rest
        get = self._store.get
        try:
            return [get(index) for index in range(position, ingestion.frontier)]
        except (KeyError, IndexError):
            return None  # closed meanwhile: the lazy path reports it

    def moved(self, token: int, position: int) -> None:
        """A tracked reader (``max_readers``) will read ``position`` next."""
        self._registry.moved(token, position)

    def finished(self, token: int) -> None:
        """A tracked reader is done."""
        self._registry.finished(token)
