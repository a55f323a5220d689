"""Ctrl-C and SIGTERM: stop cleanly, once, and in bounded time.

The first signal raises :class:`KeyboardInterrupt` in the main thread, so
``with`` blocks unwind and the cache's files are removed; DuckDB's work runs
in a worker thread stopped with its own interrupt call. An engine busy in
native code may not return for minutes (Polars ignores SIGTERM), so a
watchdog thread hears every signal through ``signal.set_wakeup_fd`` and ends
the process itself, after running the :func:`cleanup_on_exit` cleanups: at
once on a second signal, or :data:`STOP_GRACE` seconds after the first if it
came during :func:`bounded_stop` work and the process is still there.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn, TypeVar

__all__ = [
    "bounded_stop",
    "cleanup_on_exit",
    "exit_interrupted",
    "handle_signals",
    "interrupted",
    "run_interruptibly",
]

T = TypeVar("T")

#: Seconds an engine gets to stop after the first signal before the process ends anyway.
STOP_GRACE = 2.0

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # the first signal, once the handler has raised KeyboardInterrupt
_cleanups: list[Callable[[], object]] = []  # run, newest first, before a forced exit
_bounded = [0]  # how many bounded_stop() blocks are running
_exiting = threading.Lock()  # held by the one thread that ends the process


def _force_exit(reason: str, signum: int) -> NoReturn:
    """Remove the registered files, say why, and end the process with 128 + ``signum``."""
    _exiting.acquire()  # never released: the holder ends the process
    for cleanup in reversed(list(_cleanups)):
        with contextlib.suppress(Exception):
            cleanup()
    with contextlib.suppress(OSError):
        # On a terminal, from the start of a cleared line: the main thread may be
        # erasing a progress bar at this moment.
        start = "\r\x1b[K" if os.isatty(2) else ""
        os.write(2, f"{start}batchcorder: {reason}\n".encode())
    os._exit(128 + signum)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if not _received:  # a second signal is the watchdog's
        _received.append(signum)
        raise KeyboardInterrupt


def _watch(read_fd: int) -> None:
    """Read the signal numbers Python's C handler writes to the pipe until it is closed."""
    first, deadline = 0, None
    try:
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([read_fd], [], [], timeout)[0]:
                _force_exit(f"interrupted; the engine did not stop within {STOP_GRACE:g} s", first)
            data = os.read(read_fd, 64)
            if not data:  # handle_signals() closed the pipe
                return
            for signum in (signum for signum in data if signum in _SIGNALS):
                if first:
                    _force_exit("interrupted again, exiting at once", first)
                first = signum
                if _bounded[0]:
                    deadline = time.monotonic() + STOP_GRACE
    finally:
        os.close(read_fd)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the SIGINT/SIGTERM handlers and the watchdog for the block (main thread only)."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = {signum: signal.signal(signum, _on_signal) for signum in _SIGNALS}
    watchdog = threading.Thread(target=_watch, args=(read_fd,), name="batchcorder-watchdog")
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)
        watchdog.join()


@contextmanager
def bounded_stop() -> Iterator[None]:
    """Mark work that may not stop on a signal: the watchdog ends the process after STOP_GRACE."""
    _bounded[0] += 1
    try:
        yield
    finally:
        _bounded[0] -= 1


@contextmanager
def cleanup_on_exit(cleanup: Callable[[], object]) -> Iterator[None]:
    """Run ``cleanup`` if the process is ended while the block runs: it must take no lock."""
    _cleanups.append(cleanup)
    try:
        yield
    finally:
        _cleanups.remove(cleanup)


def interrupted() -> bool:
    """Whether SIGINT or SIGTERM arrived (an engine may wrap the KeyboardInterrupt in its error)."""
    return bool(_received)


def exit_interrupted() -> NoReturn:
    """End the process after an interruption; ``os._exit`` does not wait for an engine's threads."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(128 + (_received[0] if _received else signal.SIGINT))


def run_interruptibly(
    work: Callable[[], T], interrupt: Callable[[], object], grace: float = STOP_GRACE
) -> T:
    """Run ``work`` in a worker thread; on Ctrl-C call ``interrupt`` until it stops, and re-raise.

    ``interrupt`` (e.g. DuckDB's ``connection.interrupt``) is called for up to
    ``grace`` seconds. Exceptions of ``work`` are re-raised in the caller.

    Examples
    --------
    >>> run_interruptibly(lambda: 6 * 7, interrupt=lambda: None)
    42
    """
    outcome: Future[T] = Future()

    def target() -> None:
        try:
            outcome.set_result(work())
        except BaseException as error:
            outcome.set_exception(error)

    threading.Thread(target=target, name="batchcorder-engine", daemon=True).start()
    try:
        return outcome.result()  # not Thread.join: one interrupted can mark the thread done
    except KeyboardInterrupt:
        # Again and again: an interrupt that lands between two statements, or
        # before the engine starts one, is forgotten when the next one starts.
        deadline = time.monotonic() + grace
        while not outcome.done() and time.monotonic() < deadline:
            interrupt()
            futures.wait([outcome], 0.05)
        raise
