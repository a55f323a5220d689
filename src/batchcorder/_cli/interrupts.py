"""Ctrl-C and SIGTERM: stop cleanly, once.

The first SIGINT or SIGTERM raises :class:`KeyboardInterrupt` in the main
thread, so ``with StreamCache(...)`` blocks unwind and remove the cache's
files; a second signal while that cleanup runs exits at once. Engine work
that does not look at signals itself (DuckDB) runs in a worker thread that
the main thread stops with the engine's own interrupt call.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

__all__ = [
    "abandoned_workers",
    "exit_status",
    "handle_signals",
    "interrupted",
    "run_interruptibly",
]

T = TypeVar("T")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []
_abandoned: list[threading.Thread] = []


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _received:
        sys.stderr.write("batchcorder: interrupted again, exiting at once\n")
        sys.stderr.flush()
        os._exit(128 + _received[0])
    _received.append(signum)
    raise KeyboardInterrupt


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the one-shot SIGINT/SIGTERM handlers for the block.

    Does nothing outside the main thread, where signal handlers cannot be set.

    Examples
    --------
    >>> with handle_signals():
    ...     pass
    >>> exit_status()
    130
    """
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def interrupted() -> bool:
    """Whether SIGINT or SIGTERM arrived inside :func:`handle_signals`.

    Engines that catch the :class:`KeyboardInterrupt` and raise their own
    error instead (DataFusion) are recognised with this.

    Examples
    --------
    >>> interrupted()
    False
    """
    return bool(_received)


def exit_status() -> int:
    """The exit status for an interruption: 128 + the signal's number (130 for Ctrl-C).

    Examples
    --------
    >>> exit_status()
    130
    """
    return 128 + (_received[0] if _received else signal.SIGINT)


def abandoned_workers() -> bool:
    """Whether a worker thread was still running when it was given up on.

    Examples
    --------
    >>> abandoned_workers()
    False
    """
    return any(worker.is_alive() for worker in _abandoned)


def run_interruptibly(
    work: Callable[[], T], interrupt: Callable[[], object], grace: float = 5.0
) -> T:
    """Run ``work`` in a worker thread; on Ctrl-C call ``interrupt`` and re-raise.

    The main thread waits in short, interruptible steps. On
    :class:`KeyboardInterrupt` it calls ``interrupt`` (e.g. DuckDB's
    ``connection.interrupt``), waits up to ``grace`` seconds for ``work`` to
    stop, and re-raises. Exceptions of ``work`` are re-raised in the caller.

    Parameters
    ----------
    work : callable
        What to run.
    interrupt : callable
        Asks ``work`` to stop; called from the main thread.
    grace : float, default 5.0
        Seconds to wait for ``work`` after ``interrupt``.

    Returns
    -------
    object
        What ``work`` returned.

    Examples
    --------
    >>> run_interruptibly(lambda: 6 * 7, interrupt=lambda: None)
    42
    """
    done = threading.Event()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:
            outcome["error"] = error
        finally:
            done.set()

    # Joining with Thread.join would be wrong here: a join interrupted by
    # KeyboardInterrupt can mark a running thread as finished (CPython 3.11).
    worker = threading.Thread(target=target, name="batchcorder-engine", daemon=True)
    worker.start()
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        interrupt()
        if not done.wait(grace):
            _abandoned.append(worker)
        raise
    if "error" in outcome:
        error = outcome["error"]
        assert isinstance(error, BaseException)
        raise error
    return outcome["value"]  # type: ignore[return-value]
