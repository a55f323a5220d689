"""Batches appended to an Arrow IPC file, with recent ones kept in RAM.

The hot layer holds the most recently ingested batches, bounded by
``memory_capacity`` bytes (each distinct buffer counted once). Colder batches
are decoded from a read-only memory map of the file: no copy into RAM, and
readers on different threads page in different offsets without waiting for
each other or for the writer.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import pyarrow as pa

from batchcorder._buffers import BufferLedger
from batchcorder._storage.files import (
    create_private_file,
    ensure_directory,
    remove_created_directories,
)
from batchcorder._storage.ipc import open_appender
from batchcorder.errors import DiskCapacityError

__all__ = ["DiskStore"]


class DiskStore:
    """An append-only IPC file plus a byte-bounded hot layer.

    Parameters
    ----------
    directory : Path
        Where the cache file is created (the directory is created if missing).
    schema : pyarrow.Schema
        Schema of every batch.
    memory_capacity : int
        Bytes the hot layer may hold.
    disk_capacity : int
        Bytes the file may grow to, checked before each write.
    write_policy : {"on_insertion", "on_eviction"}
        Write each batch when it arrives, or only when it leaves the hot layer.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pyarrow as pa
    >>> batch = pa.record_batch({"x": [1, 2, 3]})
    >>> store = DiskStore(Path(tempfile.mkdtemp()), batch.schema, 1, 1 << 20, "on_insertion")
    >>> store.append(0, batch)
    >>> (store.memory_batches, store.disk_batches)
    (0, 1)
    >>> store.get(0).equals(batch)
    True
    >>> store.close()
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        memory_capacity: int,
        disk_capacity: int,
        write_policy: str,
    ) -> None:
        self.file_path: Path | None
        # Directories made for the cache go with it on close().
        self._created_directories = ensure_directory(directory)
        try:
            self.file_path, fd = create_private_file(directory)
        except FileNotFoundError:
            # Another cache that had created the directory removed it on close.
            self._created_directories = ensure_directory(directory)
            self.file_path, fd = create_private_file(directory)
        try:
            self._file = os.fdopen(fd, "r+b", buffering=0)
        except BaseException:
            os.close(fd)
            self.file_path.unlink(missing_ok=True)
            remove_created_directories(self._created_directories)
            raise
        try:
            self._appender = open_appender(self._file, schema)
            # Reopened for each map: through the descriptor where the system
            # allows, so a path swapped after creation is never followed.
            proc_path = f"/proc/self/fd/{self._file.fileno()}"
            self._map_path = proc_path if Path(proc_path).exists() else str(self.file_path)
        except BaseException:
            # Even an interrupt here must not leave the file behind.
            self._file.close()
            self.file_path.unlink(missing_ok=True)
            remove_created_directories(self._created_directories)
            raise
        self._memory_capacity = memory_capacity
        self._disk_capacity = disk_capacity
        self._write_on_insertion = write_policy == "on_insertion"

        self._lock = threading.Lock()
        # Guarded by _lock: the hot layer in ingestion order, its byte ledger,
        # where each written batch lies in the file, and the current map.
        self._hot: OrderedDict[int, pa.RecordBatch] = OrderedDict()
        self._hot_ledger = BufferLedger()
        self._spilling: dict[int, pa.RecordBatch] = {}
        self._locations: list[tuple[int, int] | None] = []
        # Once the file is finished it is mapped for good, so a cold batch is
        # decoded once and kept: a view of the map, file pages and no RAM.
        self._decoded: dict[int, pa.RecordBatch] = {}
        self._finished = False
        self._written_count = 0
        self._mapped: pa.Buffer | None = None
        self._mapped_size = 0
        self._closed = False

    # -- writing (the ingesting thread only) -------------------------------

    def append(self, index: int, batch: pa.RecordBatch) -> None:
        if self._write_on_insertion:
            self._write(index, batch)
        with self._lock:
            self._hot[index] = batch
            self._hot_ledger.add(batch)
            victims: list[tuple[int, pa.RecordBatch]] = []
            while self._hot_ledger.bytes > self._memory_capacity and self._hot:
                victim = self._hot.popitem(last=False)
                self._hot_ledger.remove(victim[1])
                victims.append(victim)
            if self._write_on_insertion:
                return
            # Until its write lands, a victim stays readable from _spilling.
            self._spilling.update(victims)
        unwritten = victims
        try:
            for victim_index, victim in victims:
                self._write(victim_index, victim)
                unwritten = unwritten[1:]
        finally:
            with self._lock:
                for victim_index, _ in victims:
                    self._spilling.pop(victim_index, None)
                if unwritten:
                    self._keep_unwritten(index, unwritten)

    def _keep_unwritten(self, index: int, unwritten: list[tuple[int, pa.RecordBatch]]) -> None:
        """After a failed spill: keep the older batches, drop batch ``index``.

        The older batches could not be written but readers were promised them,
        so they stay in RAM, oldest first. Batch ``index`` itself was never
        published (append raises), so keeping it would only waste memory.
        """
        new_batch = self._hot.pop(index, None)
        if new_batch is not None:
            self._hot_ledger.remove(new_batch)
        for victim_index, victim in reversed(unwritten):
            if victim_index == index:
                continue
            self._hot[victim_index] = victim
            self._hot_ledger.add(victim)
            self._hot.move_to_end(victim_index, last=False)

    def _write(self, index: int, batch: pa.RecordBatch) -> None:
        if self._closed:
            raise ValueError("StreamCache is closed")
        needed = self._appender.bytes_needed(batch)
        used = self._appender.size
        if used + needed > self._disk_capacity:
            raise DiskCapacityError(needed, used, self._disk_capacity)
        location = self._appender.append(batch)
        with self._lock:
            self._locations.extend([None] * (index + 1 - len(self._locations)))
            self._locations[index] = location
            self._written_count += 1

    def finish(self) -> None:
        if self._closed:
            return
        # Nothing reserved the footer when no batch was written: write it only
        # if it fits, else leave the (empty) file as it is.
        if (
            self._written_count
            or self._appender.size + self._appender.bytes_to_finish() <= self._disk_capacity
        ):
            self._appender.finish()
        with self._lock:
            if self._closed:
                return
            self._finished = True
            self._remap()

    # -- reading (any thread) ----------------------------------------------

    def get(self, index: int) -> pa.RecordBatch:
        with self._lock:
            batch = self._hot.get(index)
            if batch is None:
                batch = self._spilling.get(index)
            if batch is None:
                batch = self._decoded.get(index)
            if batch is not None:
                return batch
            location = self._locations[index] if index < len(self._locations) else None
            if location is None:
                raise KeyError(index)
            offset, length = location
            if offset + length > self._mapped_size:
                self._remap()
            mapped = self._mapped
            keep = self._finished
        # Decoding (and the page faults it may cause) happens outside the lock.
        batch = self._appender.read(mapped, offset, length)
        if keep:
            with self._lock:
                if not self._closed and self._locations[index] is not None:
                    batch = self._decoded.setdefault(index, batch)
        return batch

    def _remap(self) -> None:
        # A new map covers the file as written so far; batches decoded from an
        # older map keep that map alive for as long as they are referenced.
        # pa.memory_map's buffers keep the mapping alive after close(), and
        # close() releases the descriptor (mmap.mmap dup()s it per map).
        source = pa.memory_map(self._map_path, "r")
        try:
            if source.size() == 0:
                self._mapped, self._mapped_size = None, 0
                return
            self._mapped = source.read_buffer()
            self._mapped_size = self._mapped.size
        finally:
            source.close()

    def drop(self, index: int) -> None:
        with self._lock:
            batch = self._hot.pop(index, None)
            if batch is not None:
                self._hot_ledger.remove(batch)
            self._spilling.pop(index, None)
            self._decoded.pop(index, None)
            if index < len(self._locations):
                # Frees the index entry; the bytes stay in the append-only file.
                self._locations[index] = None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._hot.clear()
            self._spilling.clear()
            self._decoded.clear()
            self._hot_ledger = BufferLedger()
            self._locations = []
            self._mapped = None
            self._mapped_size = 0
        self._file.close()
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)
        remove_created_directories(self._created_directories)

    # -- accounting --------------------------------------------------------

    @property
    def memory_batches(self) -> int:
        return len(self._hot) + len(self._spilling)

    @property
    def memory_bytes(self) -> int:
        return self._hot_ledger.bytes

    @property
    def disk_batches(self) -> int:
        return self._written_count

    @property
    def disk_bytes(self) -> int:
        return self._appender.size
