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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from batchcorder._buffers import BufferLedger
from batchcorder._storage.files import (
    create_private_file,
    ensure_directory,
    remove_created_directories,
    sweep_stale_files,
)
from batchcorder._storage.ipc import open_appender
from batchcorder._storage.sink import PositionedSink
from batchcorder.errors import CacheClosedError, CacheFileError, DiskCapacityError

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

    #: Batches leave RAM with the hot layer.
    keeps_every_batch = False

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        memory_capacity: int,
        disk_capacity: int,
        write_policy: str,
    ) -> None:
        # Directories made for the cache go with it on close().
        self._created_directories = ensure_directory(directory)
        # Files of caches whose process died without closing them.
        sweep_stale_files(directory)
        try:
            self.file_path, self._fd = create_private_file(directory)
        except FileNotFoundError:
            # Another cache that had created the directory removed it on close.
            self._created_directories = ensure_directory(directory)
            self.file_path, self._fd = create_private_file(directory)
        # Only the creating process writes the file or removes it (see _check_owner).
        self._owner_pid = os.getpid()
        try:
            self._appender = open_appender(PositionedSink(self._fd), schema)
        except BaseException:
            # Even an interrupt here must not leave the file behind.
            self._remove_file()
            raise
        # Reopened for each map: through the descriptor where the system
        # allows, so a path swapped after creation is never followed.
        proc_path = f"/proc/self/fd/{self._fd}"
        self._map_path = proc_path if Path(proc_path).exists() else str(self.file_path)
        self._memory_capacity = memory_capacity
        self._disk_capacity = disk_capacity
        self._write_on_insertion = write_policy == "on_insertion"

        self._lock = threading.Lock()
        # Guarded by _lock: the hot layer in ingestion order, its byte ledger,
        # where each written batch lies in the file, and the current map.
        # Invariants: a location is recorded only after every byte of its
        # batch is written; _file_users counts the threads using the
        # descriptor, which is closed by the last of them once _closed is set.
        # No I/O (write, map, stat) happens while _lock is held.
        self._hot: OrderedDict[int, pa.RecordBatch] = OrderedDict()
        self._hot_ledger = BufferLedger()
        self._spilling: dict[int, pa.RecordBatch] = {}
        self._locations: list[tuple[int, int] | None] = []
        # Once the file is finished it is mapped for good, so a cold batch is
        # decoded once and kept: a view of the map, file pages and no RAM.
        self._decoded: dict[int, pa.RecordBatch] = {}
        self._finished = False
        self._written_count = 0
        self._written_bytes = 0
        # (size, modification time) of the file after the last write of ours:
        # once the file is finished, any other change is another process's.
        self._file_state: tuple[int, int] | None = None
        self._mapped: pa.Buffer | None = None
        self._closed = False
        self._file_users = 0
        self._file_released = False

    # -- the descriptor ----------------------------------------------------

    @contextmanager
    def _using_file(self) -> Iterator[int]:
        """The descriptor, kept open until the block ends even if close() comes meanwhile."""
        with self._lock:
            if self._closed:
                raise CacheClosedError()
            self._file_users += 1
        try:
            yield self._fd
        finally:
            with self._lock:
                self._file_users -= 1
                release = self._closed and self._file_users == 0 and not self._file_released
                self._file_released = self._file_released or release
            if release:
                self._remove_file()

    def _remove_file(self) -> None:
        """Close the descriptor; the creating process also removes the file and its directories."""
        os.close(self._fd)
        if os.getpid() == self._owner_pid:
            self.file_path.unlink(missing_ok=True)
            remove_created_directories(self._created_directories)

    def _check_owner(self) -> None:
        """Refuse to write from a forked process: the file is the parent's."""
        if os.getpid() != self._owner_pid:
            raise CacheFileError(
                self.file_path,
                f"belongs to process {self._owner_pid}, of which this process is a fork: "
                "a forked process reads the batches cached before the fork but cannot add "
                "to the file; call ingest_all() before forking, or pickle the finished cache",
            )

    def _check_file(self, fd: int, end: int) -> None:
        """Refuse to read a file another process has cut or, once finished, changed.

        Reading a mapping past the end of a truncated file raises SIGBUS, so
        the size is checked before every read of bytes not yet checked.
        """
        # Read before the stat: once finished, the file's state is final, so a
        # stat taken after must match it (one taken before might not).
        with self._lock:
            expected = self._file_state if self._finished else None
        found = os.fstat(fd)
        written = max(end, expected[0] if expected is not None else 0)
        if found.st_size < written:
            raise CacheFileError(
                self.file_path,
                f"is {found.st_size} bytes long but the cache wrote {written}: it was truncated "
                "by another process, and the batches in the lost bytes cannot be read",
            )
        if expected is not None and (found.st_size, found.st_mtime_ns) != expected:
            raise CacheFileError(
                self.file_path,
                "was modified by another process after the cache finished writing it; "
                "its batches can no longer be trusted",
            )

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
        self._check_owner()
        needed = self._appender.bytes_needed(batch)
        used = self._appender.size
        if used + needed > self._disk_capacity:
            raise DiskCapacityError(needed, used, self._disk_capacity)
        with self._using_file():
            # Returns only once every byte is written (PositionedSink).
            location = self._appender.append(batch)
        with self._lock:
            self._locations.extend([None] * (index + 1 - len(self._locations)))
            self._locations[index] = location
            self._written_count += 1
            self._written_bytes = self._appender.size

    def finish(self) -> None:
        with self._lock:
            if self._closed:
                return
        self._check_owner()
        # Nothing reserved the footer when no batch was written: write it only
        # if it fits, else leave the (empty) file as it is.
        if (
            self._written_count
            or self._appender.size + self._appender.bytes_to_finish() <= self._disk_capacity
        ):
            with self._using_file():
                self._appender.finish()
        with self._using_file() as fd:
            found = os.fstat(fd)
        mapped = self._map()
        with self._lock:
            self._written_bytes = self._appender.size
            self._file_state = (found.st_size, found.st_mtime_ns)
            self._finished = True
            self._mapped = mapped

    # -- reading (any thread) ----------------------------------------------

    def get(self, index: int) -> pa.RecordBatch:
        with self._lock:
            batch = self._hot.get(index)
            if batch is None:
                batch = self._spilling.get(index)
            if batch is not None:
                return batch
            decoded = self._decoded.get(index)
            location = self._locations[index] if index < len(self._locations) else None
            if location is None:
                raise KeyError(index)
            offset, length = location
            mapped = self._mapped
            keep = self._finished
        if decoded is not None:
            # A batch from the file is served only while the file is as the
            # cache wrote it; batches in RAM are served whatever it became.
            with self._using_file() as fd:
                self._check_file(fd, offset + length)
            return decoded
        # Mapping, the size check and decoding (with the page faults it may
        # cause) happen outside the lock.
        end = offset + length
        if mapped is None or mapped.size < end:
            mapped = self._map()
            with self._lock:
                if mapped is not None and (self._mapped is None or self._mapped.size < mapped.size):
                    self._mapped = mapped
        with self._using_file() as fd:
            self._check_file(fd, end)
        if mapped is None or mapped.size < end:
            raise CacheFileError(self.file_path, f"ends before batch {index} (byte {end})")
        batch = self._decode(mapped, index, offset, length)
        if keep:
            with self._lock:
                if not self._closed and self._locations[index] is not None:
                    batch = self._decoded.setdefault(index, batch)
        return batch

    def _decode(self, mapped: pa.Buffer, index: int, offset: int, length: int) -> pa.RecordBatch:
        """Batch ``index`` from its bytes in ``mapped``; CacheFileError if they no longer decode."""
        try:
            return self._appender.read(mapped, offset, length)
        except Exception as error:
            # Bytes the cache wrote no longer decode: another process changed them.
            raise CacheFileError(
                self.file_path,
                f"holds bytes at {offset}..{offset + length} that no longer decode as batch "
                f"{index} ({type(error).__name__}: {error}): it was changed by another process",
            ) from error

    def check_file(self) -> None:
        """Raise :class:`CacheFileError` if another process truncated (or changed) the file.

        Checked before each replay: once the file is finished, its decoded
        batches are served from the map without a check of their own.
        """
        with self._lock:
            written = self._written_bytes
        if written:
            with self._using_file() as fd:
                self._check_file(fd, written)

    def _map(self) -> pa.Buffer | None:
        """A read-only map of the file as written so far; None while it is empty.

        A new map covers the file as written so far; batches decoded from an
        older map keep that map alive for as long as they are referenced.
        pa.memory_map's buffers keep the mapping alive after close(), and
        close() releases the descriptor (mmap.mmap dup()s it per map).
        """
        with self._using_file():
            source = pa.memory_map(self._map_path, "r")
            try:
                return source.read_buffer() if source.size() else None
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
            # A thread writing or mapping now closes the descriptor when it is done.
            release = self._file_users == 0
            self._file_released = release
        if release:
            self._remove_file()

    @property
    def complete_file(self) -> Path | None:
        """The file's path once it is one finished Arrow IPC file holding every batch, else None.

        None until the upstream is exhausted, for the dictionary layout (one IPC
        stream per batch) and for ``write_policy="on_eviction"`` (batches still
        in the hot layer were never written).
        """
        with self._lock:
            complete = self._finished and self._write_on_insertion and self._appender.is_single_file
            return self.file_path if complete and not self._closed else None

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

    @property
    def finished_identity(self) -> tuple[int, int, int, int] | None:
        """``(size, mtime_ns, inode, device)`` of the file as the store finished it, else None.

        None before :meth:`finish` and after :meth:`close`. Size and
        modification time are those recorded when the store finished writing;
        inode and device are the descriptor's, which never change. What other
        processes are sent, so that they refuse a file changed since.
        """
        with self._lock:
            state = self._file_state if self._finished and not self._closed else None
        if state is None:
            return None
        try:
            with self._using_file() as fd:
                found = os.fstat(fd)
        except CacheClosedError:
            return None
        return (state[0], state[1], found.st_ino, found.st_dev)
