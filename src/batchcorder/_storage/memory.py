"""Batches kept as references in RAM: zero-copy, no serialisation."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa

from batchcorder._buffers import BufferLedger
from batchcorder.errors import CacheClosedError

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps every batch object as it came from the upstream.

    Examples
    --------
    >>> import pyarrow as pa
    >>> store = MemoryStore()
    >>> batch = pa.record_batch({"x": [1, 2]})
    >>> store.append(0, batch)
    >>> store.get(0) is batch
    True
    """

    file_path: Path | None = None
    complete_file: Path | None = None
    #: Every batch stays until dropped (no hot layer to leave).
    keeps_every_batch = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Index i holds batch i; dropped batches leave None so indices stay stable.
        self._batches: list[pa.RecordBatch | None] = []
        self._held_count = 0
        # Bytes are counted lazily: appends only note the batch (ingestion
        # stays cheap), and memory_bytes folds the batches counted since into
        # the ledger. Invariant: the held batches before _counted_before are
        # in the ledger, those from it on are not.
        self._ledger = BufferLedger()
        self._counted_before = 0
        self._closed = False

    def append(self, index: int, batch: pa.RecordBatch) -> None:
        with self._lock:
            if self._closed:
                raise CacheClosedError()
            if index != len(self._batches):
                raise ValueError(f"batch {index} appended after {len(self._batches)} batches")
            self._batches.append(batch)
            self._held_count += 1

    def get(self, index: int) -> pa.RecordBatch:
        batch = self._batches[index]
        if batch is None:
            raise KeyError(index)
        return batch

    def drop(self, index: int) -> None:
        with self._lock:
            if index >= len(self._batches):
                return
            batch = self._batches[index]
            if batch is None:
                return
            self._batches[index] = None
            self._held_count -= 1
            if index < self._counted_before:
                self._ledger.remove(batch)

    def finish(self) -> None:
        pass

    def check_file(self) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._batches = []
            self._held_count = 0
            self._ledger = BufferLedger()
            self._counted_before = 0

    @property
    def memory_batches(self) -> int:
        return self._held_count

    @property
    def memory_bytes(self) -> int:
        with self._lock:
            for batch in self._batches[self._counted_before :]:
                if batch is not None:
                    self._ledger.add(batch)
            self._counted_before = len(self._batches)
            return self._ledger.bytes

    @property
    def disk_batches(self) -> int:
        return 0

    @property
    def disk_bytes(self) -> int:
        return 0
