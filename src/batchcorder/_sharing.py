"""Sending a finished disk-mode cache to other processes: :class:`CacheFileView`.

A :class:`~batchcorder.StreamCache` lives in one process, but once it is in
disk mode and has read its whole upstream, its file is one finished Arrow IPC
file holding every batch (:attr:`StreamCache.complete_file`). That file is
what travels: pickling the cache (or a view of it) sends the file's path, and
unpickling opens the file again, memory-mapped, in the receiving process. Its
batches are zero-copy views of the map, and every process on the machine
reads the same pages of the page cache.

Lifetime: the file belongs to the cache, and ``close()`` removes it. The views
that exist keep reading it (a map keeps the file's data until it is unmapped,
also in a process forked after the close); unpickling a view afterwards raises
``FileNotFoundError`` naming the file, in every process. The identity of the
file (device, inode, size, modification time) travels with its path, so a
different file that appears at the same path is refused, never read in its
place. Disk space of a removed file is freed once the last view of it is gone.
"""

from __future__ import annotations

import mmap
import operator
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

from batchcorder._types import holds_dictionary

if TYPE_CHECKING:
    from collections.abc import Iterator
    from os import PathLike

    from batchcorder._cache import StreamCache

__all__ = ["CacheFileView", "reduce_cache"]


class _FileIdentity(NamedTuple):
    """What tells one file from another that later takes its path."""

    device: int
    inode: int
    size: int
    modified_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> _FileIdentity:
        return cls(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


_SERVE_HINT = "or serve it over Arrow Flight with batchcorder.flight.serve"


def _complete_file_of(cache: StreamCache) -> Path:
    """The cache's finished file, or an exception that says why there is none and what to do."""
    if cache.closed:
        raise ValueError(
            "cannot share a closed StreamCache with other processes: close() removed its file"
        )
    path = cache.complete_file
    if path is not None:
        return Path(path)
    if cache.disk_file is None:
        raise TypeError(
            "cannot share a memory-mode StreamCache with other processes (pickling it): its "
            "batches live in this process's memory. Build it in disk mode (disk_path=..., "
            "disk_capacity=...) and call ingest_all() before sending it, " + _SERVE_HINT
        )
    if not cache.upstream_exhausted:
        raise ValueError(
            "cannot share this disk-mode StreamCache with other processes (pickling it) yet: "
            f"it has read {cache.ingested_count} batches of its upstream and not the end. "
            "Call cache.ingest_all() first: then its file is one finished Arrow IPC file "
            "that other processes open by path"
        )
    if any(holds_dictionary(field.type) for field in cache.schema):
        raise ValueError(
            "cannot share this StreamCache with other processes (pickling it): its schema has "
            "dictionary-encoded fields, so its file is a sequence of IPC streams, not one Arrow "
            "IPC file. Cache a cast to the value types instead (StreamCache(cache.cast(schema), "
            "disk_path=..., disk_capacity=...)), " + _SERVE_HINT
        )
    raise ValueError(
        "cannot share this StreamCache with other processes (pickling it): its file "
        f"{cache.disk_file} does not hold every batch. With write_policy='on_eviction' the file "
        "holds only the batches that left the hot layer; build the cache with "
        "write_policy='on_insertion' (the default), " + _SERVE_HINT
    )


class _MappedFile:
    """One finished Arrow IPC file, memory-mapped once per process, its batches decoded lazily.

    Decoding a batch reads only its metadata; the batch's buffers are views of
    the map. Decoded batches are kept (they cost no RAM: their data are file
    pages), guarded by a lock since the IPC reader is not shared across threads.
    """

    def __init__(self, path: Path, expected: _FileIdentity | None) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise FileNotFoundError(
                2,
                "the cache file does not exist: the StreamCache that owns it was closed "
                "(close() removes its file) or this process runs on another machine; keep "
                "the cache open while other processes open its file, " + _SERVE_HINT,
                str(path),
            ) from None
        try:
            identity = _FileIdentity.of(os.fstat(fd))
            if expected is not None and identity != expected:
                raise FileNotFoundError(
                    2,
                    "the cache file was replaced: the file at this path is not the one "
                    "that was shared (its StreamCache was closed)",
                    str(path),
                )
            if identity.size == 0:
                raise ValueError(f"{path} is empty: it is not a finished Arrow IPC file")
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self.path = path
        self.identity = identity
        self.buffer = pa.py_buffer(mapped)
        try:
            self._reader = pa.ipc.open_file(self.buffer)
        except pa.ArrowInvalid as error:
            raise ValueError(f"{path} is not a finished Arrow IPC file: {error}") from error
        self.schema: pa.Schema = self._reader.schema
        self.num_batches: int = self._reader.num_record_batches
        self._lock = threading.Lock()
        self._batches: list[pa.RecordBatch | None] = [None] * self.num_batches

    def batch(self, index: int) -> pa.RecordBatch:
        batch = self._batches[index]
        if batch is None:
            with self._lock:
                batch = self._batches[index]
                if batch is None:
                    batch = self._reader.get_batch(index)
                    self._batches[index] = batch
        return batch


def _identity_at(path: Path) -> _FileIdentity | None:
    try:
        return _FileIdentity.of(path.stat())
    except OSError:
        return None


class _OpenFiles:
    """The files this process has mapped, so that views of one file share one map."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Guarded by lock. Weak: a map lives as long as a view holds it.
        self.maps: weakref.WeakValueDictionary[tuple[str, _FileIdentity], _MappedFile] = (
            weakref.WeakValueDictionary()
        )

    def renew_locks(self) -> None:
        """After a fork: a thread of the parent may have held a lock; the child has no such thread."""
        self.lock = threading.Lock()
        for mapped in list(self.maps.values()):
            mapped._lock = threading.Lock()

    def map(self, path: Path, expected: _FileIdentity | None) -> _MappedFile:
        """The map of ``path``: this process's own if it has one of that very file, else a new one."""
        if expected is not None:
            with self.lock:
                mapped = self.maps.get((str(path), expected))
            # A map this process holds is reused only while the file is still
            # there: unpickling after close() fails the same in every process.
            if mapped is not None and _identity_at(path) == expected:
                return mapped
        mapped = _MappedFile(path, expected)
        with self.lock:
            return self.maps.setdefault((str(path), mapped.identity), mapped)


_OPEN_FILES = _OpenFiles()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_OPEN_FILES.renew_locks)


def _reopen(path: str, identity: tuple[int, int, int, int], start: int, stop: int) -> CacheFileView:
    """Unpickle a :class:`CacheFileView`: map the file again in this process."""
    mapped = _OPEN_FILES.map(Path(path), _FileIdentity(*identity))
    return CacheFileView._over(mapped, start, stop, owner=None)


class CacheFileView:
    """Read-only, random-access batches of a finished cache file; what a pickled cache becomes.

    A view holds the batches ``[start, stop)`` of one finished Arrow IPC file,
    memory-mapped: :meth:`batch` returns batch ``i`` without a copy, any
    number of readers replay the view, and a view pickles as the file's path
    and its range, so it can be sent to worker processes (``spawn`` or
    ``fork``) on the same machine, where it maps the file again. Pickling a
    finished disk-mode :class:`~batchcorder.StreamCache` gives the view of its
    whole file.

    Like a cache, every ``__arrow_c_stream__`` call is a fresh reader, so
    pyarrow, DuckDB and Polars can scan a view again and again.

    Parameters
    ----------
    cache : StreamCache
        A disk-mode cache whose upstream is exhausted (call ``ingest_all()``)
        and whose file is one Arrow IPC file (``cache.complete_file``). The
        view keeps the cache alive, so the file stays while the view is
        referenced; ``cache.close()`` still removes it.

    Raises
    ------
    TypeError
        If ``cache`` is not a StreamCache, or is a memory-mode cache (its
        batches cannot leave the process).
    ValueError
        If the cache is closed, its upstream is not exhausted, or its file does
        not hold every batch as one IPC file (``write_policy="on_eviction"``,
        dictionary-encoded fields). The message says what to do instead.

    Examples
    --------
    >>> import pickle, tempfile
    >>> import pyarrow as pa
    >>> from batchcorder import CacheFileView, StreamCache
    >>> table = pa.table({"x": range(10)})
    >>> cache = StreamCache(table.to_reader(max_chunksize=4),
    ...                     disk_path=tempfile.mkdtemp(), disk_capacity=1 << 20)
    >>> cache.ingest_all()
    3
    >>> view = CacheFileView(cache)
    >>> view.num_batches, view.num_rows
    (3, 10)
    >>> view.batch(2).column("x").to_pylist()
    [8, 9]
    >>> pa.table(view).equals(table)
    True

    A pickled cache arrives as a view of its file, as it would in a worker:

    >>> received = pickle.loads(pickle.dumps(cache))
    >>> received
    <CacheFileView batches 0 to 3 of 3, 10 rows, schema: ['x']>
    >>> [batch.num_rows for batch in received.batch_range(1, 3)]
    [4, 2]
    >>> [part.num_batches for part in received.split(2)]
    [1, 2]
    >>> cache.close()
    """

    _file: _MappedFile
    _start: int
    _stop: int
    _owner: StreamCache | None

    def __init__(self, cache: StreamCache) -> None:
        from batchcorder._cache import StreamCache

        if not isinstance(cache, StreamCache):
            raise TypeError(
                f"cache must be a batchcorder.StreamCache, got {type(cache).__name__}; "
                "use CacheFileView.open(path) for an Arrow IPC file"
            )
        path = _complete_file_of(cache)
        mapped = _OPEN_FILES.map(path, None)
        self._init(mapped, 0, mapped.num_batches, cache)

    @classmethod
    def open(cls, path: str | PathLike[str]) -> CacheFileView:
        """A view of every batch of the finished Arrow IPC file at ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            A finished Arrow IPC file, such as ``cache.complete_file``.

        Returns
        -------
        CacheFileView

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        ValueError
            If the file is not a finished Arrow IPC file.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> import pyarrow as pa
        >>> from batchcorder import CacheFileView
        >>> path = Path(tempfile.mkdtemp()) / "data.arrow"
        >>> with pa.ipc.new_file(path, pa.schema([("x", pa.int64())])) as writer:
        ...     writer.write_table(pa.table({"x": [1, 2, 3]}))
        >>> CacheFileView.open(path).batch(0).column("x").to_pylist()
        [1, 2, 3]
        >>> CacheFileView.open(path.with_name("gone.arrow"))
        Traceback (most recent call last):
        ...
        FileNotFoundError: [Errno 2] the cache file does not exist: ...gone.arrow'
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        mapped = _OPEN_FILES.map(Path(path), None)
        return cls._over(mapped, 0, mapped.num_batches, owner=None)

    @classmethod
    def _over(
        cls, mapped: _MappedFile, start: int, stop: int, owner: StreamCache | None
    ) -> CacheFileView:
        view = cls.__new__(cls)
        view._init(mapped, start, stop, owner)
        return view

    def _init(self, mapped: _MappedFile, start: int, stop: int, owner: StreamCache | None) -> None:
        if not 0 <= start <= stop <= mapped.num_batches:
            raise ValueError(
                f"batch range [{start}, {stop}) does not lie within the file's "
                f"{mapped.num_batches} batches: {mapped.path}"
            )
        self._file = mapped
        self._start = start
        self._stop = stop
        # Keeps the cache (and so its file) alive while this view is referenced.
        self._owner = owner
        self._rows: int | None = None

    # -- what the view holds ----------------------------------------------

    @property
    def path(self) -> Path:
        """The file the view reads."""
        return self._file.path

    @property
    def schema(self) -> pa.Schema:
        """The schema of every batch."""
        return self._file.schema

    @property
    def start(self) -> int:
        """Index in the file of the view's first batch."""
        return self._start

    @property
    def stop(self) -> int:
        """Index in the file one past the view's last batch."""
        return self._stop

    @property
    def num_batches(self) -> int:
        """Batches in the view."""
        return self._stop - self._start

    @property
    def num_rows(self) -> int:
        """Rows over every batch of the view (read from the batches' metadata, not their data)."""
        if self._rows is None:
            self._rows = sum(self.batch(index).num_rows for index in range(self.num_batches))
        return self._rows

    @property
    def nbytes(self) -> int:
        """Bytes of the buffers of the view's batches (from their metadata, not their data)."""
        return sum(self.batch(index).get_total_buffer_size() for index in range(self.num_batches))

    def batch(self, index: int) -> pa.RecordBatch:
        """Batch ``index`` of the view (negative counts from the end), a zero-copy view of the file.

        Parameters
        ----------
        index : int
            Position in the view, ``0 <= index < num_batches`` (or ``-num_batches
            <= index < 0``).

        Returns
        -------
        pyarrow.RecordBatch

        Raises
        ------
        TypeError
            If ``index`` is not an integer.
        IndexError
            If ``index`` is out of range.
        """
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(f"index must be an int, got {type(index).__name__}") from None
        count = self.num_batches
        if position < 0:
            position += count
        if not 0 <= position < count:
            raise IndexError(f"batch index {index} out of range for a view of {count} batches")
        return self._file.batch(self._start + position)

    def batch_range(self, start: int, stop: int | None = None) -> CacheFileView:
        """The view of batches ``[start, stop)`` of this view (slice rules: negatives, clamping).

        Parameters
        ----------
        start : int
            First batch, relative to this view.
        stop : int, optional
            One past the last batch; defaults to the end of this view.

        Returns
        -------
        CacheFileView
            Over the same map; pickles as the file's path and the range.
        """
        for name, value in (("start", start), ("stop", stop)):
            if value is not None and not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        positions = range(self.num_batches)[start:stop]
        first = self._start + positions.start
        # An empty slice may end before it starts (range(10)[7:3]).
        return self._over(self._file, first, max(first, self._start + positions.stop), self._owner)

    def split(self, parts: int) -> list[CacheFileView]:
        """``parts`` contiguous views covering this one, their batch counts differing by at most one.

        Parameters
        ----------
        parts : int
            Number of views, at least 1; views beyond the batch count are empty.

        Returns
        -------
        list of CacheFileView
        """
        if not isinstance(parts, int) or isinstance(parts, bool):
            raise TypeError(f"parts must be an int, got {type(parts).__name__}")
        if parts < 1:
            raise ValueError(f"parts must be at least 1, got {parts}")
        count = self.num_batches
        bounds = [part * count // parts for part in range(parts + 1)]
        return [self.batch_range(bounds[i], bounds[i + 1]) for i in range(parts)]

    # -- reading -----------------------------------------------------------

    def _batches(self) -> list[pa.RecordBatch]:
        return [self._file.batch(index) for index in range(self._start, self._stop)]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """Iterate the view's batches in order."""
        for index in range(self._start, self._stop):
            yield self._file.batch(index)

    def reader(self) -> pa.RecordBatchReader:
        """A new reader of the view's batches, from the first; no buffer is copied."""
        return pa.Table.from_batches(self._batches(), schema=self.schema).to_reader()

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Export a new reader of the view's batches as an Arrow C stream capsule."""
        return self.reader().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> object:
        """Export the schema as an Arrow C schema capsule."""
        return self.schema.__arrow_c_schema__()

    # -- pickling ----------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the file's path, identity and batch range; unpickling maps the file again."""
        if self._owner is not None and self._owner.closed:
            raise ValueError(
                f"cannot pickle a view of {self.path}: its StreamCache is closed, and "
                "close() removed the file"
            )
        mapped = self._file
        return (_reopen, (str(mapped.path), tuple(mapped.identity), self._start, self._stop))

    def __repr__(self) -> str:
        return (
            f"<CacheFileView batches {self._start} to {self._stop} of {self._file.num_batches}, "
            f"{self.num_rows} rows, schema: {self.schema.names}>"
        )


def reduce_cache(cache: StreamCache) -> tuple[Any, ...]:
    """``StreamCache.__reduce__``: a finished disk-mode cache pickles as the view of its file.

    Raises
    ------
    TypeError
        For a memory-mode cache.
    ValueError
        For a closed cache, or one whose file is not one finished IPC file holding every batch.
    """
    return CacheFileView(cache).__reduce__()
