"""When a cache's data may go away: the one lifetime every consumer of a cache shares.

A :class:`Lifetime` belongs to one cache. Every consumer holds it, directly
or through what it holds (a reader holds the cache's
:class:`~batchcorder._replay.Replay`, which holds the lifetime; datasets,
registered tables, Polars frames, Ray datasets and Flight servers hold the
``StreamCache`` itself), and asks it, before each read, whether the cache is
still open. So:

- dropping the ``StreamCache`` handle ends nothing: the batches and the
  cache file are released when the last holder is gone (reference counting,
  as the reference implementation does with its ``Arc``), or at interpreter
  exit, whichever comes first;
- :meth:`Lifetime.close` is the one explicit end: every consumer's next read
  raises :class:`~batchcorder.errors.CacheClosedError`, the upstream is let
  go and the store releases its batches and removes its file (a batch
  already handed out stays valid: it holds its own buffers, or its part of
  the file's map, until it is dropped).
- A consumer that handed the cache's batches to something that does not ask
  before each read (an engine's in-memory table) registers a release with
  :meth:`Lifetime.on_close`, which ``close()`` runs: so no engine keeps
  answering from, or keeps mapped, a closed cache's batches.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from batchcorder._bounds import StreamBounds
from batchcorder.errors import CacheClosedError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Lifetime", "closed_dataset", "lifetime_of", "released_at_close"]


class Lifetime:
    """Whether a cache is open, and the release of its data when it ends.

    Parameters
    ----------
    bounds : StreamBounds
        The cache's bounds; ``bounds.closed`` is the one closed flag.
    stop_ingestion : callable
        Stops the ingestion and lets the upstream go (sets ``bounds.closed``).
    release_store : callable
        Releases the stored batches and removes the cache file. Called once:
        at :meth:`close`, when the lifetime is garbage-collected, or at
        interpreter exit. It must not refer to the lifetime (or it would
        keep it alive).

    Examples
    --------
    >>> bounds = StreamBounds()
    >>> def stop() -> None:
    ...     bounds.closed = True
    >>> lifetime = Lifetime(StreamBounds(), stop, lambda: print("released"))
    >>> del lifetime  # the last holder is gone
    released
    >>> lifetime = Lifetime(bounds, stop, lambda: print("released"))
    >>> lifetime.check_open()
    >>> lifetime.close()
    released
    >>> lifetime.check_open()
    Traceback (most recent call last):
    ...
    batchcorder.errors.CacheClosedError: StreamCache is closed
    """

    __slots__ = ("__weakref__", "_bounds", "_lock", "_on_close", "_release", "_stop_ingestion")

    def __init__(
        self,
        bounds: StreamBounds,
        stop_ingestion: Callable[[], None],
        release_store: Callable[[], None],
    ) -> None:
        self._bounds = bounds
        self._stop_ingestion = stop_ingestion
        self._lock = threading.Lock()
        # Guarded by _lock: releases to run at close(), each with the object
        # it releases from, held weakly (a release must not keep it alive).
        self._on_close: list[tuple[weakref.ref[Any], Callable[[Any], None]]] = []
        # Runs once: at close(), when the last holder lets go, or at exit.
        self._release = weakref.finalize(self, release_store)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._bounds.closed

    def check_open(self) -> None:
        """Raise :class:`~batchcorder.errors.CacheClosedError` if the cache is closed."""
        if self._bounds.closed:
            raise CacheClosedError()

    def on_close(self, holder: object, release: Callable[[Any], None]) -> None:
        """Have :meth:`close` call ``release(holder)``, if ``holder`` is still alive then.

        For consumers that hold the cache's batches where no check runs
        before a read (an engine's in-memory table). ``holder`` is held
        weakly; ``release`` must not refer to it. Called at once if the cache
        is closed already.
        """
        with self._lock:
            # close() sets closed before it takes the lock to run the releases:
            # a release added after that is run here instead.
            closed = self._bounds.closed
            if not closed:
                self._on_close = [entry for entry in self._on_close if entry[0]() is not None]
                self._on_close.append((weakref.ref(holder), release))
        if closed:
            release(holder)

    def close(self) -> None:
        """End the cache for every consumer: stop ingesting, release the store. Idempotent."""
        self._stop_ingestion()
        with self._lock:
            releases, self._on_close = self._on_close, []
        for holder_ref, release in releases:
            holder = holder_ref()
            if holder is not None:
                release(holder)
        self._release()


def lifetime_of(cache: object) -> Lifetime:
    """The :class:`Lifetime` of a ``StreamCache``, or of the cache a cast view reads.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1]}))
    >>> lifetime_of(cache.cast(cache.schema)) is lifetime_of(cache)
    True
    """
    lifetime: Lifetime | None = getattr(cache, "_lifetime", None)
    # By its methods, not its class: a doctest may import this module twice.
    if lifetime is None or not callable(getattr(lifetime, "on_close", None)):
        raise TypeError(f"not a batchcorder cache: {type(cache).__name__}")
    return lifetime


def closed_dataset(schema: pa.Schema) -> Any:
    """A ``pyarrow.dataset.Dataset`` with ``schema`` whose every scan raises ``CacheClosedError``.

    What an engine's table of a closed cache becomes, so that a query says
    the cache is closed rather than answering from batches it no longer has.

    Examples
    --------
    >>> import pyarrow as pa
    >>> closed_dataset(pa.schema([("x", pa.int64())])).to_table()
    Traceback (most recent call last):
    ...
    batchcorder.errors.CacheClosedError: StreamCache is closed
    """
    import pyarrow.dataset as ds

    class ClosedDataset(ds.InMemoryDataset):
        def scanner(self, *args: Any, **kwargs: Any) -> ds.Scanner:
            raise CacheClosedError()

        def get_fragments(self, filter: Any = None) -> Any:
            raise CacheClosedError()

    return ClosedDataset([], schema=schema)


def released_at_close(dataset: Any, lifetime: Lifetime) -> Any:
    """A dataset that scans ``dataset`` while the cache is open, and holds nothing once it closes.

    For a dataset an engine keeps (a DuckDB registration): every call is
    passed to ``dataset`` — whose batches, in disk mode views of the cache
    file, it is the only holder of — until ``close()``, which drops it, so
    no map of the file outlives the cache; every later scan raises
    :class:`~batchcorder.errors.CacheClosedError`. The wrapper itself holds
    no batch (its pyarrow base is empty), so it must not be handed to code
    that reads a dataset's fragments directly from C++ (pyarrow's own
    ``join`` with it as the right side): it is for engines that call
    ``scanner()`` (DuckDB) or ``get_fragments()`` in Python.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}))
    >>> kept = released_at_close(ds.dataset(pa.table(cache)), lifetime_of(cache))
    >>> kept.count_rows()
    3
    >>> cache.close()
    >>> kept.count_rows()
    Traceback (most recent call last):
    ...
    batchcorder.errors.CacheClosedError: StreamCache is closed
    """
    wrapper = _released_at_close_class()([], schema=dataset.schema)
    wrapper._inner = dataset
    lifetime.on_close(wrapper, _release_inner)
    return wrapper


def _release_inner(wrapper: Any) -> None:
    wrapper._inner = None


@functools.cache
def _released_at_close_class() -> type:
    import pyarrow.dataset as ds

    class ReleasedAtClose(ds.InMemoryDataset):
        """See :func:`released_at_close`."""

        _inner: ds.Dataset | None

        def _open(self) -> ds.Dataset:
            inner = self.__dict__.get("_inner")
            if inner is None:
                raise CacheClosedError()
            return inner

        def scanner(self, *args: Any, **kwargs: Any) -> Any:
            return self._open().scanner(*args, **kwargs)

        def get_fragments(self, *args: Any, **kwargs: Any) -> Any:
            return self._open().get_fragments(*args, **kwargs)

        def filter(self, *args: Any, **kwargs: Any) -> Any:
            return self._open().filter(*args, **kwargs)

        def sort_by(self, *args: Any, **kwargs: Any) -> Any:
            return self._open().sort_by(*args, **kwargs)

        def join(self, *args: Any, **kwargs: Any) -> Any:
            return self._open().join(*args, **kwargs)

        def join_asof(self, *args: Any, **kwargs: Any) -> Any:
            return self._open().join_asof(*args, **kwargs)

        def replace_schema(self, *args: Any, **kwargs: Any) -> Any:
            return self._open().replace_schema(*args, **kwargs)

    return ReleasedAtClose
