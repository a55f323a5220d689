"""Make the ``StreamCache`` from the command-line options, and print its stats."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from batchcorder import CacheStats, DiskCapacityError, StreamCache
from batchcorder._cli.errors import CLIError, one_line, os_reason
from batchcorder._cli.interrupts import cleanup_on_exit
from batchcorder._cli.sizes import format_size
from batchcorder._cli.sources import Source, open_source
from batchcorder._cli.streams import note

__all__ = [
    "cache_session",
    "cached_source",
    "check_cache_options",
    "disk_full_message",
    "format_stats",
    "open_cache",
    "warn_about_cache_options",
]


def check_cache_options(
    disk: str | None, disk_capacity: int | None, memory_capacity: int | None
) -> list[str]:
    """Check that the cache options fit together; return warnings to show.

    Parameters
    ----------
    disk : str or None
        ``--disk``.
    disk_capacity : int or None
        ``--disk-capacity`` in bytes.
    memory_capacity : int or None
        ``--memory-capacity`` in bytes.

    Returns
    -------
    list of str
        Warnings: options that are valid but have no effect.

    Raises
    ------
    CLIError
        If ``--disk`` and ``--disk-capacity`` are not given together.

    Examples
    --------
    >>> check_cache_options("/tmp/cache", 2**30, None)
    []
    >>> check_cache_options(None, None, 2**20)
    ['--memory-capacity has no effect without --disk: a memory-only cache keeps every batch']
    >>> check_cache_options("/tmp/cache", None, None)
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
        return [
            "--memory-capacity has no effect without --disk: a memory-only cache keeps every batch"
        ]
    return []


def warn_about_cache_options(
    disk: str | None,
    disk_capacity: int | None,
    memory_capacity: int | None,
    stderr: TextIO,
    *,
    quiet: bool = False,
) -> None:
    """:func:`check_cache_options`, its warnings written to ``stderr`` unless ``quiet``.

    Examples
    --------
    >>> import sys
    >>> warn_about_cache_options(None, None, 2**20, sys.stdout)
    batchcorder: warning: --memory-capacity has no effect without --disk: a memory-only cache keeps every batch
    """
    for warning in check_cache_options(disk, disk_capacity, memory_capacity):
        note(stderr, f"warning: {warning}", quiet=quiet)


def open_cache(
    reader: Any,
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
) -> StreamCache:
    """Wrap ``reader`` in a ``StreamCache``, in disk mode when ``disk`` is given.

    Parameters
    ----------
    reader : object implementing ``__arrow_c_stream__``
        The upstream.
    disk : str, optional
        Directory for the cache file.
    disk_capacity : int, optional
        Bytes the cache file may grow to; required with ``disk``.
    memory_capacity : int, optional
        Disk mode: bytes of recent batches kept in RAM.

    Returns
    -------
    StreamCache
        The cache; close it to remove its file.

    Raises
    ------
    CLIError
        If the options are rejected or the cache directory cannot be used.

    Examples
    --------
    >>> import pyarrow as pa
    >>> with open_cache(pa.table({"x": [1, 2]})) as cache:
    ...     cache.ingest_all()
    1
    """
    check_cache_options(disk, disk_capacity, memory_capacity)
    try:
        if disk is None:
            return StreamCache(reader)
        return StreamCache(
            reader, memory_capacity=memory_capacity, disk_path=disk, disk_capacity=disk_capacity
        )
    except ValueError as error:
        raise CLIError(one_line(error)) from error
    except OSError as error:
        raise CLIError(f"cannot create the cache file in {disk!r}: {os_reason(error)}") from error


@contextmanager
def cache_session(
    reader: Any,
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
) -> Iterator[StreamCache]:
    """:func:`open_cache` for a ``with`` block; on the way out, close the cache.

    Closing removes the cache file; the directories of ``--disk`` that did
    not exist before are removed too. The same happens if the process is
    ended by a second Ctrl-C or an engine that would not stop.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pyarrow as pa
    >>> directory = Path(tempfile.mkdtemp()) / "cache"
    >>> with cache_session(pa.table({"x": [1]}), str(directory), 2**20) as cache:
    ...     len(list(directory.iterdir()))
    1
    >>> directory.exists()
    False
    """
    created = None if disk is None else _first_missing(Path(disk))

    def remove_created() -> None:
        if created is not None:
            # The directory is this command's own: nothing in it outlives the run.
            shutil.rmtree(created, ignore_errors=True)

    try:
        with open_cache(reader, disk, disk_capacity, memory_capacity) as cache:
            disk_file = cache.disk_file

            def remove_files() -> None:
                if disk_file is not None:
                    disk_file.unlink(missing_ok=True)
                remove_created()

            with cleanup_on_exit(remove_files):
                yield cache
    finally:
        remove_created()


@contextmanager
def cached_source(
    spec: str,
    stdin: BinaryIO | None,
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
) -> Iterator[tuple[Source, StreamCache]]:
    """Open SOURCE and a :func:`cache_session` over it; close both on the way out.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pyarrow as pa
    >>> import pyarrow.parquet as pq
    >>> path = Path(tempfile.mkdtemp()) / "events.parquet"
    >>> pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    >>> with cached_source(str(path), None) as (source, cache):
    ...     source.kind, cache.ingest_all(), cache.stats.ingested_rows
    ('parquet', 1, 3)
    """
    opened = open_source(spec, stdin)
    try:
        with cache_session(opened.reader, disk, disk_capacity, memory_capacity) as cache:
            yield opened, cache
    finally:
        opened.close()


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet, if any."""
    path = path.absolute()
    missing = None
    while not path.exists():
        missing, path = path, path.parent
        if path == missing:  # the root
            break
    return missing


def disk_full_message(error: DiskCapacityError) -> str:
    """Explain a full cache file in terms of the command-line options.

    Examples
    --------
    >>> print(disk_full_message(DiskCapacityError(4096, 1024, 2048)))
    the cache file outgrew --disk-capacity 2.0 KiB: 1.0 KiB used, the next batch needs 4.0 KiB more
    """
    return (
        f"the cache file outgrew --disk-capacity {format_size(error.capacity_bytes)}: "
        f"{format_size(error.used_bytes)} used, the next batch needs "
        f"{format_size(error.needed_bytes)} more"
    )


def format_stats(stats: CacheStats) -> str:
    """Render the cache's stats, one ``name  value`` line each.

    Byte counts also show in KiB/MiB/GiB.

    Parameters
    ----------
    stats : CacheStats
        A snapshot from ``cache.stats``.

    Returns
    -------
    str
        The lines, each indented by two spaces, ending with a newline.

    Examples
    --------
    >>> import pyarrow as pa
    >>> cache = StreamCache(pa.table({"x": list(range(1000))}))
    >>> _ = cache.ingest_all()
    >>> print(format_stats(cache.stats), end="")
      ingested_batches    1
      ingested_rows       1,000
      ingested_bytes      8,000 (7.8 KiB)
      memory_batches      1
      memory_bytes        8,000 (7.8 KiB)
      disk_batches        0
      disk_bytes          0
      readers_created     0
      evicted_batches     0
      upstream_exhausted  true
    """
    rows = []
    for field in dataclasses.fields(stats):
        value = getattr(stats, field.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif field.name.endswith("_bytes") and value >= 1024:
            text = f"{value:,} ({format_size(value)})"
        else:
            text = f"{value:,}"
        rows.append((field.name, text))
    width = max(len(name) for name, _ in rows)
    return "".join(f"  {name.ljust(width)}  {text}\n" for name, text in rows)
