"""Pulling the upstream exactly once: claim, pull, check, store, publish.

One :class:`Ingestion` per cache owns the upstream and the stream's progress.
Any thread that needs a batch not yet pulled either pulls it itself (if no
other thread is pulling) or waits for the thread that is. The upstream is
never called, nor a store's I/O done, while the lock is held.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType

import pyarrow as pa

from batchcorder._bounds import StreamBounds
from batchcorder._conform import conform_batch
from batchcorder._storage import BatchStore
from batchcorder._types import logical_nbytes
from batchcorder.errors import CacheClosedError, IngestionInterruptedError

__all__ = ["Ingestion", "IngestionCounts"]

#: ``(ingested_batches, ingested_rows, ingested_bytes)``
IngestionCounts = tuple[int, int, int]


#: Releases one parked waiter's lock; called through ``map``, so that waking
#: every waiter runs no Python code an interrupt could cut short.
_wake = threading.Lock().__class__.release


def _release(upstream: pa.RecordBatchReader | None) -> None:
    close = getattr(upstream, "close", None)
    if close is not None:
        close()


class _Run:
    """Identifies one thread's run of pulls while it holds the claim."""

    __slots__ = ()


class Ingestion:
    """The upstream of one cache and how far it has been pulled.

    Parameters
    ----------
    upstream : pyarrow.RecordBatchReader
        The one-shot stream; its schema is the cache's.
    store : BatchStore
        Where each pulled batch is kept before it is published.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder._storage import MemoryStore
    >>> table = pa.table({"x": [1, 2, 3]})
    >>> store = MemoryStore()
    >>> ingestion = Ingestion(table.to_reader(max_chunksize=2), store)
    >>> ingestion.wait_for(0), ingestion.frontier
    (True, 1)
    >>> ingestion.wait_for(2), ingestion.exhausted, ingestion.counts()
    (False, True, (2, 3, 24))
    """

    def __init__(
        self,
        upstream: pa.RecordBatchReader,
        store: BatchStore,
        bounds: StreamBounds | None = None,
        defer_byte_count: bool = False,
    ) -> None:
        self.schema: pa.Schema = upstream.schema
        #: frontier and closed, shared with the readers' lock-free path.
        self.bounds = StreamBounds() if bounds is None else bounds
        self._store = store
        self._lock = threading.Lock()
        # Threads waiting for the current pull, each parked on a lock of its
        # own that the pulling thread releases when its pull ends.
        self._waiters: list[threading.Lock] = []
        # Guarded by _lock. Invariants:
        # - batches [0, frontier) have been stored (some may be evicted since);
        # - no Python-level call (a property, a method) between claiming a
        #   pull and waking the waiters, so that no interrupt can land there;
        # - at most one thread pulls: the one that set _pulling, and it wakes
        #   every waiter whenever its pull ends, however it ends;
        # - _failure, once set, is what every reader reaching frontier gets;
        # - _upstream is None once exhausted, failed or closed.
        # frontier, exhausted and closed are read without the lock: they only
        # ever go one way.
        self._upstream: pa.RecordBatchReader | None = upstream
        self.exhausted = False
        # The run of pulls holding the claim; None when no thread pulls.
        self._pulling: _Run | None = None
        self._failure: BaseException | None = None
        # The failure's own traceback (re-raising must not grow it) and the
        # batch it stopped at.
        self._failure_traceback: TracebackType | None = None
        self._failure_position = 0
        self._rows = 0
        # RecordBatch.nbytes costs several microseconds a batch. Where the
        # store keeps every batch for good (defer_byte_count), it is summed
        # when asked for, from the store; else at each pull. Batches before
        # _bytes_counted are in _bytes.
        self._count_bytes_at_pull = not defer_byte_count
        self._bytes = 0
        self._bytes_counted = 0

    @property
    def frontier(self) -> int:
        """Batches pulled (and stored) so far."""
        return self.bounds.frontier

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self.bounds.closed

    def counts(self) -> IngestionCounts:
        """Batches, rows and bytes pulled so far, read together."""
        with self._lock:
            frontier, rows, nbytes = self.bounds.frontier, self._rows, self._bytes
            counted = self._bytes_counted
        if counted < frontier:
            get = self._store.get
            nbytes += sum(logical_nbytes(get(index)) for index in range(counted, frontier))
            with self._lock:
                if self._bytes_counted == counted:
                    self._bytes, self._bytes_counted = nbytes, frontier
        return frontier, rows, nbytes

    def wait_for(self, position: int) -> bool:
        """Block until batch ``position`` is stored (True) or the stream ended before it (False).

        Pulls from the upstream when the batch is not stored yet and no other
        thread is pulling (the batches before it too, if they are missing).
        Raises the recorded failure of the stream, or :class:`CacheClosedError`.
        """
        while True:
            if self._settled(position):
                return position < self.bounds.frontier
            self._pull_run(position)

    def pull_rest(self) -> None:
        """Pull every batch left, then return (the stream's failure is raised).

        One thread pulls the batches back to back, claiming the upstream once
        and publishing each batch with one round of the lock.
        """
        while True:
            if self._settled(None):
                return
            self._pull_run(None)

    def _settled(self, position: int | None) -> bool:
        """Whether batch ``position`` (None: the end) is stored or never will be.

        Waits while another thread pulls; False when the caller must pull.
        Raises the stream's failure, or :class:`CacheClosedError`.
        """
        with self._lock:
            while True:
                if self.bounds.closed:
                    raise CacheClosedError()
                if position is not None and position < self.bounds.frontier:
                    return True
                if self._failure is not None:
                    self._raise_failure()
                if self.exhausted:
                    return True
                if self._pulling is None:
                    return False
                self._park()

    def _park(self) -> None:
        """Sleep until the current pull ends. Called, and returns, with the lock held."""
        waiter = threading.Lock()
        waiter.acquire()
        self._waiters.append(waiter)
        try:
            self._lock.release()
            waiter.acquire()
        finally:
            self._lock.acquire()

    def _raise_failure(self) -> None:
        recorded = self._failure
        if isinstance(recorded, Exception):
            # Each raise starts again from the upstream's own traceback.
            raise recorded.with_traceback(self._failure_traceback)
        # An interrupt belongs to the interrupted thread; the others learn
        # that the stream cannot go on.
        assert recorded is not None
        raise IngestionInterruptedError(self._failure_position, recorded) from recorded

    def _pull_run(self, last: int | None) -> None:
        """Pull batches up to batch ``last`` (None: to the end), if no one else is pulling.

        The claim is taken once and kept from batch to batch: each batch is
        published, and the next one claimed, in one round of the lock. An
        interrupt (KeyboardInterrupt from a signal handler) may land at any
        call boundary: a pull sits in a try whose ``finally`` publishes its
        outcome, and an interrupt between two pulls gives the claim back.
        """
        run = _Run()
        try:
            with self._lock:
                if (
                    self._pulling is not None
                    or self.bounds.closed
                    or self.exhausted
                    or self._failure is not None
                ):
                    return
                self._pulling = run
                position = self.bounds.frontier
                upstream = self._upstream
            while self._pull_one(run, upstream, position, last):
                position += 1
        finally:
            if self._pulling is run:
                # Interrupted between two pulls: the stream is intact.
                with self._lock:
                    self._pulling = None
                    waiters, self._waiters = self._waiters, []
                    list(map(_wake, waiters))
                _release(self._take_finished_upstream())

    def _pull_one(
        self, run: _Run, upstream: pa.RecordBatchReader | None, position: int, last: int | None
    ) -> bool:
        """Pull and publish batch ``position``; whether the claim is kept for the next one.

        Called with the claim held. The publication runs no Python-level call
        before every waiter is woken: an interrupt cannot cut it short.
        """
        batch: pa.RecordBatch | None = None
        batch_bytes = 0
        failure: BaseException | None = None
        keep = False
        try:
            batch = self._pull(upstream, position)
            # Measured here: the publication below must run no Python call.
            batch_bytes = (
                logical_nbytes(batch) if batch is not None and self._count_bytes_at_pull else 0
            )
        except BaseException as error:
            failure = error
            raise
        finally:
            with self._lock:
                if self.bounds.closed:
                    pass  # close() released or will release the upstream
                elif failure is not None:
                    if self._failure is None:
                        self._failure = failure
                        self._failure_traceback = failure.__traceback__
                        self._failure_position = position
                elif batch is None:
                    self.exhausted = True
                else:
                    self._rows += batch.num_rows
                    if self._count_bytes_at_pull:
                        self._bytes += batch_bytes
                        self._bytes_counted = position + 1
                    self.bounds.frontier = position + 1
                    keep = last is None or position < last
                self._pulling = run if keep else None
                if self._waiters:
                    waiters, self._waiters = self._waiters, []
                    list(map(_wake, waiters))
                if not keep and (self.bounds.closed or self.exhausted or self._failure is not None):
                    upstream, self._upstream = self._upstream, None
                else:
                    upstream = None
            if upstream is not None:
                _release(upstream)
        return keep

    def _pull(self, upstream: pa.RecordBatchReader | None, position: int) -> pa.RecordBatch | None:
        """Read batch ``position`` from the upstream, check it and store it; None at the end."""
        if upstream is None:
            raise CacheClosedError()
        try:
            batch = upstream.read_next_batch()
        except StopIteration:
            batch = None
        if batch is None:
            self._store.finish()
            return None
        batch = conform_batch(batch, self.schema, position)
        self._store.append(position, batch)
        return batch

    def _take_finished_upstream(self) -> pa.RecordBatchReader | None:
        """The upstream to release, once the stream has ended (exhausted, failed or closed)."""
        with self._lock:
            if self.bounds.closed or self.exhausted or self._failure is not None:
                upstream, self._upstream = self._upstream, None
                return upstream
            return None

    def close(self) -> None:
        """Stop: release the upstream (at once, or when the current pull ends)."""
        if not self._count_bytes_at_pull and not self.bounds.closed:
            # Bytes not counted yet are counted from the store, which empties at close.
            with contextlib.suppress(KeyError, IndexError):
                self.counts()
        with self._lock:
            if self.bounds.closed:
                return
            self.bounds.closed = True
            upstream = None if self._pulling is not None else self._upstream
            if upstream is not None:
                self._upstream = None
            waiters, self._waiters = self._waiters, []
            list(map(_wake, waiters))
        _release(upstream)
