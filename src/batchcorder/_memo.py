"""A small, thread-safe memo of the most recent answers, for filters and predicates.

Engines ask a dataset or a scan the same question (the batches of a filter,
its engine rewrite, a prepared scan) for every query, and DataFusion asks
from several threads at once. The answers never change for a given key (a
cache's batches never change), so they are remembered, up to a bound.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Memo"]

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Memo(Generic[Key, Value]):
    """The answers of the ``capacity`` most recently used keys (least recently used go first).

    Thread-safe. An answer is computed outside the lock: two threads asking
    for a new key at once may both compute it; the first stored is kept and
    returned to both, so every caller sees one answer per key.

    Parameters
    ----------
    capacity : int, default 64
        Keys remembered at most.

    Examples
    --------
    >>> squares = Memo(capacity=2)
    >>> squares.get(3, lambda: 9), squares.get(3, lambda: 0)
    (9, 9)
    >>> _ = squares.get(4, lambda: 16), squares.get(5, lambda: 25)
    >>> len(squares), squares.get(3, lambda: -1)  # 3 was dropped, the least recently used
    (2, -1)
    """

    def __init__(self, capacity: int = 64) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._lock = threading.Lock()
        # Guarded by _lock, in order of use (most recent last).
        self._answers: OrderedDict[Key, Value] = OrderedDict()

    def get(self, key: Key, compute: Callable[[], Value]) -> Value:
        """The answer remembered for ``key``, else ``compute()`` (remembered now)."""
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        answer = compute()
        with self._lock:
            if key in self._answers:
                return self._answers[key]
            self._answers[key] = answer
            if len(self._answers) > self._capacity:
                self._answers.popitem(last=False)
        return answer

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)
