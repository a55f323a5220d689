"""A progress bar on standard error while the cache ingests its source."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from batchcorder._cli.errors import is_terminal
from batchcorder._cli.interrupts import cleanup_on_exit
from batchcorder._cli.sizes import format_size

__all__ = ["ProgressCallback", "ingest_progress"]

#: ``progress(ingested_batches, ingested_rows, ingested_bytes)``, as
#: ``StreamCache.ingest_all`` calls it.
ProgressCallback = Callable[[int, int, int], object]


@contextmanager
def ingest_progress(
    stream: TextIO,
    *,
    enabled: bool = True,
    total_rows: int | None = None,
    delay: float = 0.5,
) -> Iterator[ProgressCallback | None]:
    """Yield a ``progress`` callback for ``StreamCache.ingest_all`` that draws a tqdm bar.

    The bar shows rows, batches and bytes after ``delay`` seconds and is erased
    at the end. None is yielded when not ``enabled``, not on a terminal, or
    without tqdm.
    """
    if not enabled or not is_terminal(stream):
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:  # the "cli" extra is not installed: no bar
        yield None
        return
    opened = time.monotonic()
    bar = tqdm(
        total=total_rows,
        desc="ingesting",
        unit=" rows",
        unit_scale=True,
        file=stream,
        delay=delay,
        leave=False,
        dynamic_ncols=True,
    )

    def progress(batches: int, rows: int, nbytes: int) -> None:
        bar.set_postfix_str(f"{batches:,} batches, {format_size(nbytes)}", refresh=False)
        bar.update(rows - bar.n)

    def erase() -> None:
        # Not tqdm's close: at a forced exit the main thread may hold tqdm's lock,
        # and a Ctrl-C inside tqdm's first drawing leaves tqdm thinking it drew
        # nothing. Return to the line's start and clear it (ANSI "erase in line").
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.write(stream.fileno(), b"\r\x1b[K")

    try:
        with cleanup_on_exit(erase):
            yield progress
    finally:
        try:
            stream.flush()
            bar.close()
        finally:
            if time.monotonic() - opened >= delay:  # the bar may have been drawn
                erase()
