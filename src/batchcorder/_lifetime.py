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
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from batchcorder._bounds import StreamBounds
from batchcorder.errors import CacheClosedError

__all__ = ["Lifetime"]


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

    __slots__ = ("__weakref__", "_bounds", "_release", "_stop_ingestion")

    def __init__(
        self,
        bounds: StreamBounds,
        stop_ingestion: Callable[[], None],
        release_store: Callable[[], None],
    ) -> None:
        self._bounds = bounds
        self._stop_ingestion = stop_ingestion
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

    def close(self) -> None:
        """End the cache for every consumer: stop ingesting, release the store. Idempotent."""
        self._stop_ingestion()
        self._release()
