"""The interface every batch store implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pyarrow as pa

__all__ = ["BatchStore"]


class BatchStore(Protocol):
    """Holds batch ``i`` of a stream for as long as the cache needs it.

    The cache calls :meth:`append` and :meth:`finish` from one thread at a time
    (the thread currently ingesting), in increasing index order; :meth:`get`
    and :meth:`drop` may come from any thread at any time. A store guards its
    own state; the cache never holds its lock while calling a store's I/O.
    """

    @property
    def file_path(self) -> Path | None:
        """The path of the store's file, or None for a store in memory."""

    #: Whether every appended batch stays in RAM until dropped.
    keeps_every_batch: bool

    @property
    def complete_file(self) -> Path | None:
        """The file's path once it is one finished Arrow IPC file holding every batch, else None."""

    def append(self, index: int, batch: pa.RecordBatch) -> None:
        """Keep ``batch`` as batch ``index``; raise without keeping it on failure."""

    def get(self, index: int) -> pa.RecordBatch:
        """Return batch ``index`` (appended and not dropped)."""

    def drop(self, index: int) -> None:
        """Forget batch ``index``; no reader will ask for it again."""

    def finish(self) -> None:
        """The upstream is exhausted: no more appends will come."""

    def check_file(self) -> None:
        """Raise if the store's file no longer holds what was written to it (no-op in RAM)."""

    def close(self) -> None:
        """Release everything, removing any file the store created. Idempotent."""

    @property
    def memory_batches(self) -> int:
        """Batches held in RAM."""

    @property
    def memory_bytes(self) -> int:
        """Bytes of the distinct buffers held in RAM."""

    @property
    def disk_batches(self) -> int:
        """Batches written to the file."""

    @property
    def disk_bytes(self) -> int:
        """Bytes in the file."""
