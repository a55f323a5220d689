"""Where a cache keeps its batches: in RAM, or in a file with a hot layer in RAM."""

from __future__ import annotations

from batchcorder._storage.base import BatchStore
from batchcorder._storage.disk import DiskStore
from batchcorder._storage.memory import MemoryStore

__all__ = ["BatchStore", "DiskStore", "MemoryStore"]
