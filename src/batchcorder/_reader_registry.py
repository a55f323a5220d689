"""The readers of one cache: the ``max_readers`` cap and freeing batches behind them."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from batchcorder._bounds import StreamBounds
from batchcorder.errors import BatchEvictedError, ReaderLimitError

__all__ = ["ReaderRegistry"]


class ReaderRegistry:
    """Counts readers and, with ``max_readers``, frees the batches all of them have passed.

    Parameters
    ----------
    max_readers : int or None
        The cap on readers ever created; None for no cap and no eviction.
    drop : callable
        ``drop(position)`` frees batch ``position`` in the store. Called
        without the registry's lock held, once per batch, in order.

    Examples
    --------
    >>> dropped = []
    >>> registry = ReaderRegistry(2, dropped.append)
    >>> first = registry.admit(from_start=True, frontier=0)
    >>> second = registry.admit(from_start=True, frontier=0)
    >>> registry.moved(first.token, 3)
    >>> registry.moved(second.token, 2)
    >>> dropped, registry.evicted_before
    ([0, 1], 2)
    """

    class Admission:
        """A new reader's identity and where it starts."""

        __slots__ = ("position", "token", "tracked")

        def __init__(self, token: int, position: int, tracked: bool) -> None:
            self.token = token
            self.position = position
            #: Whether the reader must report its moves (``max_readers`` is set).
            self.tracked = tracked

    def __init__(
        self,
        max_readers: int | None,
        drop: Callable[[int], None],
        bounds: StreamBounds | None = None,
    ) -> None:
        self.max_readers = max_readers
        #: evicted_before, shared with the readers' lock-free path.
        self.bounds = StreamBounds() if bounds is None else bounds
        self._drop = drop
        self._lock = threading.Lock()
        self._tokens = itertools.count()
        # Guarded by _lock. Invariants: batches before evicted_before were
        # handed to drop (or are being); every tracked live reader's position
        # is >= evicted_before; nothing is evicted before max_readers readers
        # were created. evicted_before only grows, so readers read it unlocked.
        self.created = 0
        self._positions: dict[int, int] = {}
        self._frontier_seen = 0

    @property
    def evicted_before(self) -> int:
        """Batches before this one were evicted."""
        return self.bounds.evicted_before

    def admit(self, from_start: bool, frontier: int) -> ReaderRegistry.Admission:
        """Count a new reader starting at batch 0 (``from_start``) or at ``frontier``.

        Raises
        ------
        ReaderLimitError
            If ``max_readers`` readers were created already.
        BatchEvictedError
            If ``from_start`` and batch 0 was evicted.
        """
        with self._lock:
            limit = self.max_readers
            if limit is not None and self.created >= limit:
                raise ReaderLimitError(limit)
            if from_start and self.evicted_before > 0:
                raise BatchEvictedError(0)
            position = 0 if from_start else max(frontier, self.evicted_before)
            self.created += 1
            token = next(self._tokens)
            tracked = limit is not None
            if tracked:
                self._positions[token] = position
                self._frontier_seen = max(self._frontier_seen, frontier)
            # With the last reader created, what all of them passed can go.
            freed = self._advance()
        self._drop_range(freed)
        return ReaderRegistry.Admission(token, position, tracked)

    def moved(self, token: int, position: int) -> None:
        """A tracked reader's next batch is now ``position``."""
        with self._lock:
            if token in self._positions:
                self._positions[token] = position
                self._frontier_seen = max(self._frontier_seen, position)
            freed = self._advance()
        self._drop_range(freed)

    def finished(self, token: int) -> None:
        """A tracked reader was closed (or collected): it no longer holds batches back."""
        with self._lock:
            if self._positions.pop(token, None) is None:
                return
            freed = self._advance()
        self._drop_range(freed)

    def _advance(self) -> range:
        """Move evicted_before to the slowest live reader; the positions to drop. Lock held."""
        if self.max_readers is None or self.created < self.max_readers:
            return range(0)
        slowest = min(self._positions.values(), default=self._frontier_seen)
        start = self.evicted_before
        if slowest <= start:
            return range(0)
        self.bounds.evicted_before = slowest
        return range(start, slowest)

    def _drop_range(self, positions: range) -> None:
        for position in positions:
            self._drop(position)
