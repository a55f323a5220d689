"""Exceptions raised by batchcorder.

Every class subclasses the built-in exception the condition raised before it
had a class of its own, so ``except ValueError`` (or ``OSError``,
``RuntimeError``) keeps working:

================================  ==================  ==================================
class                             built-in base       raised when
================================  ==================  ==================================
:class:`CacheClosedError`         ``ValueError``      the cache (or its file) is closed
:class:`ReaderLimitError`         ``ValueError``      ``max_readers`` readers exist already
:class:`BatchEvictedError`        ``ValueError``      a batch was freed by ``max_readers``
:class:`ReaderConsumedError`      ``ValueError``      a reader was exported already
:class:`SchemaMismatchError`      ``ValueError``      an upstream batch breaks its schema
:class:`IngestionInterruptedError` ``RuntimeError``   another thread's pull was interrupted
:class:`EnginePanicError`         ``RuntimeError``    an engine panicked running our work
:class:`CacheFileError`           ``OSError``         the cache file was changed or cut
:class:`DiskCapacityError`        ``OSError``,        the file would pass ``disk_capacity``
                                  ``MemoryError``
================================  ==================  ==================================

Misuse of an argument raises the plain :class:`TypeError` or
:class:`ValueError` with a message naming the argument; an upstream stream's
own exception reaches every reader unchanged.

Every class pickles as the arguments it was made with, so an error raised in
a worker process (``multiprocessing``, ``concurrent.futures``, Ray) reaches
the caller as the same class with the same message.
"""

from __future__ import annotations

import errno
import functools
from pathlib import Path
from typing import Any

__all__ = [
    "BatchEvictedError",
    "CacheClosedError",
    "CacheFileError",
    "DiskCapacityError",
    "EnginePanicError",
    "IngestionInterruptedError",
    "ReaderConsumedError",
    "ReaderLimitError",
    "SchemaMismatchError",
]


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], keywords: dict[str, Any]) -> Any:
    """Unpickle an error of this module: call its class with the arguments it was made with."""
    return cls(*args, **keywords)


class _PicklesAsArguments:
    """Mixin: the error pickles as its class and the arguments of its ``__init__``.

    ``BaseException`` pickles as ``(type, self.args)``, and ``self.args`` holds
    the formatted message, not what these classes' ``__init__`` takes:
    unpickling would fail (or garble the message), and a worker pool whose
    result fails to unpickle hangs or breaks instead of raising.
    """

    _arguments: tuple[Any, ...]
    _keywords: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        # Wraps __init__ rather than __new__: an OSError subclass with a __new__
        # of its own would no longer have its errno set by OSError.__init__.
        @functools.wraps(init)
        def recording_init(self: _PicklesAsArguments, *args: Any, **keywords: Any) -> None:
            if "_arguments" not in self.__dict__:  # the outermost class's arguments
                self._arguments, self._keywords = args, keywords
            init(self, *args, **keywords)

        # Typeshed types a class's __init__ as object's, which a wrapper of
        # the subclass's own __init__ cannot be assigned to.
        cls.__init__ = recording_init  # type: ignore[method-assign, assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._arguments, self._keywords))


class CacheClosedError(_PicklesAsArguments, ValueError):
    """The cache was closed: it holds no batch and pulls nothing.

    Given ``path``, the cache file a reader in this or another process needed
    is gone: its cache was closed (``close()`` removes it) or the file was
    removed.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1]}))
    >>> cache.close()
    >>> try:
    ...     cache.reader()
    ... except CacheClosedError as error:
    ...     print(error)
    StreamCache is closed
    """

    def __init__(self, path: Path | str | None = None) -> None:
        message = "StreamCache is closed"
        if path is not None:
            message += (
                f": the cache was closed or its file removed, so cache file {str(path)!r} "
                "cannot be read; keep the cache open while its file is read"
            )
        super().__init__(message)
        self.path = path


class ReaderLimitError(_PicklesAsArguments, ValueError):
    """``max_readers`` readers exist already; the cap counts every reader ever created.

    Each engine query over a cache takes a reader of its own, so with
    ``max_readers=1`` a second query is refused too.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1]}), max_readers=1)
    >>> _ = cache.reader()
    >>> try:
    ...     cache.reader()
    ... except ReaderLimitError as error:
    ...     print(error.max_readers)
    1
    """

    def __init__(self, max_readers: int) -> None:
        super().__init__(
            f"Maximum number of readers ({max_readers}) reached: max_readers={max_readers} "
            "caps the readers ever created (every read of the cache, and every engine "
            "query over it, takes one); closing a reader does not free a slot"
        )
        self.max_readers = max_readers


class BatchEvictedError(_PicklesAsArguments, ValueError):
    """A batch every live reader had moved past was freed (``max_readers``).

    Raised by ``reader(from_start=True)`` once batch 0 is gone.
    """

    def __init__(self, position: int) -> None:
        if position == 0:
            message = (
                "cannot read from the start: batch 0 was evicted because every "
                "reader had moved past it (max_readers); use from_start=False"
            )
        else:
            message = f"batch {position} was evicted (max_readers): every reader had moved past it"
        super().__init__(message)
        self.position = position


class ReaderConsumedError(_PicklesAsArguments, ValueError):
    """A reader was handed to a consumer by an Arrow stream export and cannot be read again."""

    def __init__(self) -> None:
        super().__init__(
            "Reader already consumed: an Arrow stream export took its batches; "
            "create a new one with StreamCache.reader()"
        )


class SchemaMismatchError(_PicklesAsArguments, ValueError):
    """An upstream batch does not match the schema the upstream declared.

    Recorded like an upstream failure: every reader reaching that batch gets
    it, and the batches before it stay replayable.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> declared = pa.schema([("x", pa.int64())])
    >>> drifting = pa.RecordBatchReader.from_batches(declared, [pa.record_batch({"x": ["a"]})])
    >>> try:
    ...     list(StreamCache(drifting))
    ... except SchemaMismatchError as error:
    ...     print(error)
    upstream batch 0 does not match the declared schema: field 'x' is declared int64, the batch has string
    """

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"upstream batch {position} does not match the declared schema: {problem}")
        self.position = position


class IngestionInterruptedError(_PicklesAsArguments, RuntimeError):
    """The thread pulling a batch was interrupted (Ctrl-C); the stream cannot go on.

    The interrupted thread gets the ``KeyboardInterrupt`` itself; every other
    reader reaching that batch gets this error, since whether the upstream
    lost a batch is unknown.
    """

    def __init__(self, position: int, interrupt: BaseException) -> None:
        super().__init__(
            f"ingestion of batch {position} was interrupted ({type(interrupt).__name__}); "
            f"the cache holds batches 0 to {position - 1} and cannot read further"
        )
        self.position = position


class EnginePanicError(RuntimeError):
    """An engine (Polars, DataFusion) panicked while running work batchcorder gave it.

    Engines written in Rust raise a panic as ``pyo3_runtime.PanicException``,
    which derives from ``BaseException``: ``except Exception`` misses it. This
    error carries its message as an ordinary exception, chained from the panic
    (``__cause__``). A panic is a bug of the engine, not of the input.

    Examples
    --------
    >>> str(EnginePanicError("Polars", BaseException("index out of bounds")))
    'Polars panicked: index out of bounds'
    """

    def __init__(self, engine: str, panic: BaseException | str) -> None:
        detail = panic if isinstance(panic, str) else str(panic).strip() or type(panic).__name__
        super().__init__(f"{engine} panicked: {detail}")
        self.engine = engine
        self._detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        # The panic itself may not unpickle elsewhere (pyo3_runtime): its text does.
        return (type(self), (self.engine, self._detail))


class CacheFileError(_PicklesAsArguments, OSError):
    """The cache file no longer holds what the cache wrote (truncated or replaced).

    Raised before a batch is read from the file, instead of the crash
    (``SIGBUS``) reading a mapping past the end of a cut file would cause.
    """

    def __init__(self, path: Path | str | None, problem: str) -> None:
        super().__init__(errno.EIO, f"cache file {str(path)!r} {problem}")
        self.path = path


class DiskCapacityError(_PicklesAsArguments, OSError, MemoryError):
    """The next batch would take the cache file past ``disk_capacity``.

    Raised before anything is written, so every batch already in the cache
    stays readable. It is an :class:`OSError` with ``errno.ENOSPC`` and, like
    the capacity error of batchcorder 0.1.3, a :class:`MemoryError` (through
    an Arrow C stream, ``pyarrow.ArrowMemoryError``).

    Examples
    --------
    >>> import pyarrow as pa, tempfile
    >>> from batchcorder import StreamCache
    >>> from batchcorder.errors import DiskCapacityError
    >>> table = pa.table({"x": list(range(1000))})
    >>> cache = StreamCache(table, disk_path=tempfile.mkdtemp(), disk_capacity=64)
    >>> try:
    ...     cache.ingest_all()
    ... except DiskCapacityError as error:
    ...     print(error.errno == errno.ENOSPC, "disk_capacity" in str(error))
    True True
    >>> cache.close()
    """

    def __init__(self, needed_bytes: int, used_bytes: int, capacity_bytes: int) -> None:
        super().__init__(
            errno.ENOSPC,
            f"cache file would exceed disk_capacity={capacity_bytes} bytes: "
            f"{used_bytes} bytes used, the next batch needs {needed_bytes} more",
        )
        self.needed_bytes = needed_bytes
        self.used_bytes = used_bytes
        self.capacity_bytes = capacity_bytes
