"""Sending a finished disk-mode cache to other processes: :class:`CacheFileView`.

A :class:`~batchcorder.StreamCache` lives in one process, but once it is in
disk mode and has read its whole upstream, its file is one finished Arrow IPC
file holding every batch (:attr:`StreamCache.complete_file`). That file is
what travels: pickling the cache (or a view of it) sends the file's path and
the identity the file had when the cache finished writing it (device, inode,
size, modification time). Unpickling never touches the file, so it never
fails: a worker pool whose task fails to unpickle hangs (``multiprocessing``
takes the ``OSError`` for a broken pipe) or breaks (``concurrent.futures``)
without telling the caller why. The view opens the file, memory-mapped, at
its first use, inside the task, where an error reaches the caller like any
other. Its batches are zero-copy views of the map, and every process on the
machine reads the same pages of the page cache.

One lifetime for every consumer: the file belongs to the cache, and
``close()`` removes it. From then on every view, in every process, raises
:class:`~batchcorder.errors.CacheClosedError` naming the file at its next
read, whether it had mapped the file before or not; so does a view whose file
another process removed, or replaced by a new file at the same path.

Before each read (:meth:`CacheFileView.batch`, each batch of an iteration or
reader, :meth:`~CacheFileView.batch_range`) a view compares the file, through
its own descriptor (``fstat``), with the identity the cache recorded when it
finished the file: a file cut short or rewritten by another process raises
:class:`~batchcorder.errors.CacheFileError` naming the file, instead of the
``SIGBUS`` a read of a mapping past the end of a cut file causes, or a wrong
value read from rewritten bytes. ``pickle.dumps(cache)`` refuses such a file
the same way. What this cannot cover: batches already handed out are views of
the map, so a file cut while they are being read still crashes that reader,
and a rewrite that keeps the size and lands within the file system's
timestamp granularity of the finish goes unseen (the check compares metadata,
not contents).
"""

from __future__ import annotations

import mmap
import operator
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import pyarrow as pa

from batchcorder._types import holds_dictionary
from batchcorder.errors import CacheClosedError, CacheFileError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from os import PathLike

__all__ = ["CacheFileView", "SharedCache", "reduce_cache"]


@runtime_checkable
class SharedCache(Protocol):
    """What a :class:`CacheFileView` reads of the cache whose file it maps: a ``StreamCache``.

    A protocol rather than the class, so that this module does not import
    ``batchcorder._cache`` (which imports this one to pickle a cache): a
    cast view, having no file of its own, does not satisfy it.
    """

    @property
    def _store(self) -> object:
        """The cache's store: its ``finished_identity`` is what the file must still be."""

    @property
    def schema(self) -> pa.Schema: ...

    @property
    def closed(self) -> bool: ...

    @property
    def upstream_exhausted(self) -> bool: ...

    @property
    def ingested_count(self) -> int: ...

    @property
    def disk_file(self) -> Path | None: ...

    @property
    def complete_file(self) -> Path | None: ...


class _FileIdentity(NamedTuple):
    """What tells one file from another that later takes its path, or from itself changed."""

    device: int
    inode: int
    size: int
    modified_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> _FileIdentity:
        return cls(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


_SERVE_HINT = "or serve it over Arrow Flight with batchcorder.flight.serve"


def _complete_file_of(cache: SharedCache) -> Path:
    """The cache's finished file, or an exception that says why there is none and what to do."""
    if cache.closed:
        raise CacheClosedError(cache.disk_file)
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


def _finished_identity_of(cache: SharedCache, path: Path) -> _FileIdentity:
    """The identity the cache's store recorded when it finished the file (never a fresh stat)."""
    recorded = getattr(cache._store, "finished_identity", None)
    if recorded is None:  # closed since _complete_file_of looked
        raise CacheClosedError(path)
    size, modified_ns, inode, device = recorded
    return _FileIdentity(device, inode, size, modified_ns)


def _check_status(path: Path, expected: _FileIdentity, found: os.stat_result) -> None:
    """Raise unless ``found`` is the file ``expected`` describes, unchanged and not removed.

    Raises
    ------
    CacheClosedError
        The file was removed (its cache closed), or another file took its path.
    CacheFileError
        The file was cut short or rewritten since its cache finished it.
    """
    if (found.st_dev, found.st_ino) != (expected.device, expected.inode):
        raise CacheClosedError(path)
    if found.st_size < expected.size:
        raise CacheFileError(
            path,
            f"is {found.st_size} bytes long but was {expected.size} when its cache finished "
            "it: another process truncated it, and the batches in the lost bytes cannot be read",
        )
    if (found.st_size, found.st_mtime_ns) != (expected.size, expected.modified_ns):
        raise CacheFileError(
            path,
            "was modified by another process after its cache finished writing it; "
            "its batches can no longer be trusted",
        )
    if found.st_nlink == 0:
        raise CacheClosedError(path)


class _MappedFile:
    """One finished Arrow IPC file, memory-mapped once per process, its batches decoded lazily.

    Decoding a batch reads only its metadata; the batch's buffers are views of
    the map. Decoded batches are kept (they cost no RAM: their data are file
    pages), guarded by a lock since the IPC reader is not shared across threads.
    The descriptor stays open as long as the map, for :meth:`check`.
    """

    def __init__(self, path: Path, expected: _FileIdentity | None) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            status = os.fstat(fd)
            if expected is not None:
                _check_status(path, expected, status)
            if status.st_size == 0:
                raise ValueError(f"{path} is empty: it is not a finished Arrow IPC file")
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except BaseException:
            os.close(fd)
            raise
        weakref.finalize(self, os.close, fd)
        self._fd = fd
        self.path = path
        self.identity = _FileIdentity.of(status)
        self.buffer = pa.py_buffer(mapped)
        try:
            self._reader = pa.ipc.open_file(self.buffer)
        except pa.ArrowInvalid as error:
            raise ValueError(f"{path} is not a finished Arrow IPC file: {error}") from error
        self.schema: pa.Schema = self._reader.schema
        self.num_batches: int = self._reader.num_record_batches
        self._lock = threading.Lock()
        self._batches: list[pa.RecordBatch | None] = [None] * self.num_batches

    def check(self) -> None:
        """Raise unless the file is still the one mapped, unchanged and not removed."""
        found = os.fstat(self._fd)
        # The common case in one comparison; _check_status says what differs.
        if found.st_nlink and self.identity == (
            found.st_dev,
            found.st_ino,
            found.st_size,
            found.st_mtime_ns,
        ):
            return
        _check_status(self.path, self.identity, found)

    def batch(self, index: int) -> pa.RecordBatch:
        """Batch ``index`` of the file; the caller has checked the file first."""
        batch = self._batches[index]
        if batch is None:
            with self._lock:
                batch = self._batches[index]
                if batch is None:
                    batch = self._reader.get_batch(index)
                    self._batches[index] = batch
        return batch


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
        """The checked map of ``path``: this process's own if it has one of that file, else new."""
        if expected is not None:
            with self.lock:
                mapped = self.maps.get((str(path), expected))
            if mapped is not None:
                mapped.check()
                return mapped
        mapped = _MappedFile(path, expected)
        with self.lock:
            return self.maps.setdefault((str(path), mapped.identity), mapped)


_OPEN_FILES = _OpenFiles()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_OPEN_FILES.renew_locks)


def _map_cache_file(path: Path, expected: _FileIdentity) -> _MappedFile:
    """The map of a cache's file; a file no longer there means its cache was closed."""
    try:
        return _OPEN_FILES.map(path, expected)
    except FileNotFoundError:
        raise CacheClosedError(path) from None


def _reopen(path: str, identity: tuple[int, int, int, int], start: int, stop: int) -> CacheFileView:
    """Unpickle a :class:`CacheFileView`. Never fails: the file is opened at the first read."""
    return CacheFileView._make(Path(path), _FileIdentity(*identity), start, stop, None, None)


class CacheFileView:
    """Read-only, random-access batches of a finished cache file; what a pickled cache becomes.

    A view holds the batches ``[start, stop)`` of one finished Arrow IPC file,
    memory-mapped: :meth:`batch` returns batch ``i`` without a copy, any
    number of readers replay the view, and a view pickles as the file's path,
    identity and range, so it can be sent to worker processes (``spawn`` or
    ``fork``) on the same machine. Unpickling never fails; the view maps the
    file at its first read, and each read first checks that the file is
    still the one the cache finished (see the module documentation). Pickling
    a finished disk-mode :class:`~batchcorder.StreamCache` gives the view of
    its whole file.

    Like a cache, every ``__arrow_c_stream__`` call is a fresh reader, so
    pyarrow, DuckDB and Polars can scan a view again and again.

    Parameters
    ----------
    cache : StreamCache
        A disk-mode cache whose upstream is exhausted (call ``ingest_all()``)
        and whose file is one Arrow IPC file (``cache.complete_file``). The
        view keeps the cache alive, so the file stays while the view is
        referenced; ``cache.close()`` still removes it, and then every read of
        every view of it raises :class:`~batchcorder.errors.CacheClosedError`.

    Raises
    ------
    TypeError
        If ``cache`` is not a StreamCache, or is a memory-mode cache (its
        batches cannot leave the process).
    ValueError
        If its upstream is not exhausted, or its file does not hold every
        batch as one IPC file (``write_policy="on_eviction"``,
        dictionary-encoded fields). The message says what to do instead.
    CacheClosedError
        If the cache is closed (a ``ValueError``).
    CacheFileError
        If another process changed the file since the cache finished it.

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

    Once the cache is closed, every view of its file says so at its next read:

    >>> cache.close()
    >>> received.batch(0)
    Traceback (most recent call last):
    ...
    batchcorder.errors.CacheClosedError: StreamCache is closed: the cache was closed or its file removed, ...
    """

    _path: Path
    _identity: _FileIdentity
    _file: _MappedFile | None
    _start: int
    _stop: int
    _owner: SharedCache | None
    _rows: int | None

    def __init__(self, cache: SharedCache) -> None:
        if not isinstance(cache, SharedCache):
            raise TypeError(
                f"cache must be a batchcorder.StreamCache, got {type(cache).__name__}; "
                "use CacheFileView.open(path) for an Arrow IPC file"
            )
        path = _complete_file_of(cache)
        identity = _finished_identity_of(cache, path)
        mapped = _map_cache_file(path, identity)
        self._init(path, identity, 0, mapped.num_batches, mapped, cache)

    @classmethod
    def open(cls, path: str | PathLike[str]) -> CacheFileView:
        """A view of every batch of the finished Arrow IPC file at ``path``.

        The file's identity is taken now: a later change to it, or its
        removal, makes the view's reads raise.

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
        FileNotFoundError: [Errno 2] No such file or directory: '...gone.arrow'
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        mapped = _OPEN_FILES.map(Path(path), None)
        return cls._make(mapped.path, mapped.identity, 0, mapped.num_batches, mapped, None)

    @classmethod
    def _make(
        cls,
        path: Path,
        identity: _FileIdentity,
        start: int,
        stop: int,
        mapped: _MappedFile | None,
        owner: SharedCache | None,
    ) -> CacheFileView:
        view = cls.__new__(cls)
        view._init(path, identity, start, stop, mapped, owner)
        return view

    def _init(
        self,
        path: Path,
        identity: _FileIdentity,
        start: int,
        stop: int,
        mapped: _MappedFile | None,
        owner: SharedCache | None,
    ) -> None:
        self._path = path
        self._identity = identity
        self._start = start
        self._stop = stop
        # None until the first read of a view that arrived by pickle.
        self._file = None
        if mapped is not None:
            self._attach(mapped)
        # Keeps the cache (and so its file) alive while this view is referenced.
        self._owner = owner
        self._rows = None

    def _attach(self, mapped: _MappedFile) -> None:
        if not 0 <= self._start <= self._stop <= mapped.num_batches:
            raise ValueError(
                f"batch range [{self._start}, {self._stop}) does not lie within the file's "
                f"{mapped.num_batches} batches: {mapped.path}"
            )
        self._file = mapped

    def _checked_file(self) -> _MappedFile:
        """The map, once the file is checked: still there and as its cache finished it.

        Raises
        ------
        CacheClosedError
            If the cache was closed, or the file removed or replaced.
        CacheFileError
            If the file was cut short or rewritten.
        """
        owner = self._owner
        if owner is not None and owner.closed:
            raise CacheClosedError(self._path)
        mapped = self._file
        if mapped is None:
            # The first read of a view that arrived by pickle: map the file.
            mapped = _map_cache_file(self._path, self._identity)
            self._attach(mapped)
        else:
            mapped.check()
        return mapped

    def _detached(self) -> CacheFileView:
        """This view without its cache: pickles even after close() (then its reads raise)."""
        return self._make(self._path, self._identity, self._start, self._stop, self._file, None)

    # -- what the view holds ----------------------------------------------

    @property
    def path(self) -> Path:
        """The file the view reads."""
        return self._path

    @property
    def schema(self) -> pa.Schema:
        """The schema of every batch (maps the file if the view has not read it yet)."""
        mapped = self._file
        return (mapped if mapped is not None else self._checked_file()).schema

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
            self._rows = sum(batch.num_rows for batch in self)
        else:
            self._checked_file()
        return self._rows

    @property
    def nbytes(self) -> int:
        """Bytes of the buffers of the view's batches (from their metadata, not their data)."""
        return sum(batch.get_total_buffer_size() for batch in self)

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
        CacheClosedError
            If the cache was closed, or its file removed.
        CacheFileError
            If another process cut or rewrote the file.
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
        return self._checked_file().batch(self._start + position)

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

        Raises
        ------
        CacheClosedError, CacheFileError
            As :meth:`batch`: the file is checked.
        """
        for name, value in (("start", start), ("stop", stop)):
            if value is not None and not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        mapped = self._checked_file()
        positions = range(self.num_batches)[start:stop]
        first = self._start + positions.start
        # An empty slice may end before it starts (range(10)[7:3]).
        last = max(first, self._start + positions.stop)
        return self._make(self._path, self._identity, first, last, mapped, self._owner)

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

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """Iterate the view's batches in order, checking the file before each."""
        for index in range(self._start, self._stop):
            yield self._checked_file().batch(index)

    def reader(self) -> pa.RecordBatchReader:
        """A new reader of the view's batches, from the first; no buffer is copied.

        The file is checked now, so that a closed or changed file raises here
        with its own class, and again before each batch the reader hands out
        (through an Arrow C stream, that error arrives as an Arrow error
        carrying its message).
        """
        schema = self._checked_file().schema
        return pa.RecordBatchReader.from_batches(schema, iter(self))

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Export a new reader of the view's batches as an Arrow C stream capsule."""
        return self.reader().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> object:
        """Export the schema as an Arrow C schema capsule."""
        return self.schema.__arrow_c_schema__()

    # -- pickling ----------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the file's path, identity and batch range; the receiver maps it at first read.

        Raises
        ------
        CacheClosedError
            If the view's cache (in this process) is closed.
        """
        owner = self._owner
        if owner is not None and owner.closed:
            raise CacheClosedError(self._path)
        return (_reopen, (str(self._path), tuple(self._identity), self._start, self._stop))

    def __repr__(self) -> str:
        head = f"<CacheFileView batches {self._start} to {self._stop}"
        try:
            mapped = self._checked_file()
            return f"{head} of {mapped.num_batches}, {self.num_rows} rows, schema: {mapped.schema.names}>"
        except (OSError, ValueError) as error:
            return f"{head} of {str(self._path)!r}, unreadable: {type(error).__name__}>"


def reduce_cache(cache: SharedCache) -> tuple[Any, ...]:
    """``StreamCache.__reduce__``: a finished disk-mode cache pickles as the view of its file.

    The identity sent is the one the cache recorded when it finished the
    file, and the file is checked against it first.

    Raises
    ------
    TypeError
        For a memory-mode cache.
    ValueError
        For a cache whose file is not one finished IPC file holding every batch.
    CacheClosedError
        For a closed cache (a ``ValueError``).
    CacheFileError
        If another process cut or rewrote the file since the cache finished it.
    """
    return CacheFileView(cache).__reduce__()
