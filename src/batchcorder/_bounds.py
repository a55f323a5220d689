"""``StreamBounds``: the three values a reader's lock-free path reads."""

from __future__ import annotations

__all__ = ["StreamBounds"]


class StreamBounds:
    """Where a cache's stored batches begin and end, and whether it is closed.

    Batches ``[evicted_before, frontier)`` are in the store while ``closed`` is
    False. Each value moves one way only (the two bounds grow, ``closed``
    turns on), so a reader may read them without a lock: a stale value only
    sends it to the slow path. ``frontier`` and ``closed`` are written by the
    ingestion (under its lock), ``evicted_before`` by the reader registry
    (under its lock).

    Examples
    --------
    >>> bounds = StreamBounds()
    >>> bounds.evicted_before <= 0 < bounds.frontier
    False
    """

    __slots__ = ("closed", "evicted_before", "frontier")

    def __init__(self) -> None:
        self.frontier = 0
        self.evicted_before = 0
        self.closed = False
