"""The ``StreamCache`` of the command-line options: open it, fill it, print its stats."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import pyarrow as pa

from batchcorder import CacheStats, DiskCapacityError, StreamCache
from batchcorder._cli.errors import CLIError, note, one_line, os_reason
from batchcorder._cli.interrupts import bounded_stop, cleanup_on_exit
from batchcorder._cli.progress import ingest_progress
from batchcorder._cli.sizes import format_size, written_size
from batchcorder._cli.sources import Source, open_source

__all__ = ["cache_session", "cached_source", "format_stats", "ingest", "warn_about_cache_options"]


def warn_about_cache_options(
    disk: str | None,
    disk_capacity: int | None,
    memory_capacity: int | None,
    stderr: TextIO,
    *,
    quiet: bool = False,
) -> None:
    """Refuse cache options that do not go together; warn about one that does nothing.

    Examples
    --------
    >>> import sys
    >>> warn_about_cache_options(None, None, 2**20, sys.stdout)
    batchcorder: warning: --memory-capacity has no effect without --disk: a memory-only cache keeps every batch
    >>> warn_about_cache_options("/tmp/cache", None, None, sys.stdout)
    Traceback (most recent call last):
    ...
    batchcorder._cli.errors.CLIError: --disk needs --disk-capacity, the most the cache file may grow to (e.g. --disk-capacity 10GiB)
    """
    if disk is not None and disk_capacity is None:
        raise CLIError(
            "--disk needs --disk-capacity, the most the cache file may grow to "
            "(e.g. --disk-capacity 10GiB)"
        )
    if disk is None and disk_capacity is not None:
        raise CLIError("--disk-capacity needs --disk, the directory for the cache file")
    if disk is None and memory_capacity is not None:
        note(
            stderr,
            "warning: --memory-capacity has no effect without --disk: "
            "a memory-only cache keeps every batch",
            quiet=quiet,
        )


@contextmanager
def cache_session(
    reader: Any,
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
) -> Iterator[StreamCache]:
    """A ``StreamCache`` over ``reader`` (disk mode with ``disk``), closed on the way out.

    Closing removes the cache file, and the directories of ``--disk`` that did
    not exist before; so does a forced exit (a second Ctrl-C).

    Examples
    --------
    >>> import tempfile
    >>> directory = Path(tempfile.mkdtemp()) / "cache"
    >>> with cache_session(pa.table({"x": [1]}), str(directory), 2**20) as cache:
    ...     len(list(directory.iterdir()))
    1
    >>> directory.exists()
    False
    """
    warn_about_cache_options(disk, disk_capacity, memory_capacity, sys.stderr, quiet=True)
    created = None if disk is None else _first_missing(Path(disk))

    def remove_files() -> None:
        if disk_file is not None:
            disk_file.unlink(missing_ok=True)
        if created is not None:  # the command's own directory: nothing in it outlives the run
            shutil.rmtree(created, ignore_errors=True)

    disk_file = None
    try:
        try:
            if disk is None:
                cache = StreamCache(reader)
            else:
                cache = StreamCache(reader, memory_capacity, disk, disk_capacity)
        except ValueError as error:
            raise CLIError(one_line(error)) from error
        except OSError as error:
            raise CLIError(
                f"cannot create the cache file in {disk!r}: {os_reason(error)}"
            ) from error
        with cache:
            disk_file = cache.disk_file
            with cleanup_on_exit(remove_files):
                yield cache
    finally:
        remove_files()


@contextmanager
def cached_source(
    spec: str,
    stdin: BinaryIO | None,
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
) -> Iterator[tuple[Source, StreamCache]]:
    """Open SOURCE and a :func:`cache_session` over it; close both on the way out."""
    opened = open_source(spec, stdin)
    try:
        with cache_session(opened.reader, disk, disk_capacity, memory_capacity) as cache:
            yield opened, cache
    finally:
        opened.close()


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet, if any."""
    path, missing = path.absolute(), None
    while not path.exists() and path != path.parent:
        missing, path = path, path.parent
    return missing


def ingest(
    cache: StreamCache,
    source: Source,
    stderr: TextIO,
    *,
    quiet: bool = False,
    disk_capacity: int | None = None,
) -> int:
    """Pull the whole source into ``cache`` (a progress bar on a terminal); the batch count.

    Raises
    ------
    CLIError
        If the source turns out unreadable half-way, or the cache file
        outgrows ``disk_capacity``, which the message gives as it was written.
    """
    with (
        bounded_stop(),
        ingest_progress(stderr, enabled=not quiet, total_rows=source.total_rows) as progress,
    ):
        try:
            return cache.ingest_all(progress=progress)
        except DiskCapacityError as error:
            capacity = error.capacity_bytes if disk_capacity is None else disk_capacity
            raise CLIError(
                f"the cache file outgrew --disk-capacity {written_size(capacity)}: "
                f"{error.used_bytes:,} bytes used, the next batch needs "
                f"{error.needed_bytes:,} more"
            ) from error
        except (pa.ArrowException, OSError, ValueError) as error:
            raise CLIError(f"cannot read {source.label}: {one_line(error)}") from error


def format_stats(stats: CacheStats) -> str:
    """The cache's stats, one indented ``name  value`` line each, bytes also in KiB/MiB/GiB.

    Examples
    --------
    >>> cache = StreamCache(pa.table({"x": list(range(1000))}))
    >>> _ = cache.ingest_all()
    >>> print(format_stats(cache.stats), end="")  # doctest: +ELLIPSIS
      ingested_batches    1
      ingested_rows       1,000
      ingested_bytes      8,000 (7.8 KiB)
      ...
      upstream_exhausted  true
    """
    rows = []
    for field in dataclasses.fields(stats):
        value = getattr(stats, field.name)
        if isinstance(value, bool):
            text = str(value).lower()
        elif field.name.endswith("_bytes") and value >= 1024:
            text = f"{value:,} ({format_size(value)})"
        else:
            text = f"{value:,}"
        rows.append((field.name, text))
    width = max(len(name) for name, _ in rows)
    return "".join(f"  {name.ljust(width)}  {text}\n" for name, text in rows)
