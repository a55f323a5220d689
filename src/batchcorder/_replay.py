"""What a reader sees of its cache: the one interface between the two.

:class:`Replay` implements :class:`~batchcorder._reader.ReaderSource` over a
cache's ingestion, store and reader registry. The reader's hot path calls
:meth:`Replay.cached` only: it takes no lock, because the bounds it checks
(``evicted_before`` and ``frontier``) only grow and ``closed`` only turns on.
"""

from __future__ import annotations

import pyarrow as pa

from batchcorder._eviction import ReaderRegistry
from batchcorder._ingestion import Ingestion
from batchcorder._storage import BatchStore
from batchcorder.errors import BatchEvictedError, CacheClosedError

__all__ = ["Replay"]


class Replay:
    """Batches by position for the readers of one cache.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder._storage import MemoryStore
    >>> store = MemoryStore()
    >>> ingestion = Ingestion(pa.table({"x": [1, 2]}).to_reader(max_chunksize=1), store)
    >>> replay = Replay(ingestion, store, ReaderRegistry(None, store.drop))
    >>> replay.cached(0) is None  # not pulled yet
    True
    >>> replay.fetch(0).num_rows, replay.cached(0).num_rows, replay.fetch(2)
    (1, 1, None)
    """

    def __init__(self, ingestion: Ingestion, store: BatchStore, registry: ReaderRegistry) -> None:
        self.schema: pa.Schema = ingestion.schema
        self._ingestion = ingestion
        self._store = store
        self._registry = registry

    def cached(self, position: int) -> pa.RecordBatch | None:
        """Batch ``position`` if it is in the store now; None otherwise. Never blocks."""
        if (
            self._registry.evicted_before <= position < self._ingestion.frontier
            and not self._ingestion.closed
        ):
            try:
                return self._store.get(position)
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
        self._store.check_file()
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
