"""The ``StreamCache`` of the command-line options: open it, fill it, print its stats."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from batchcorder import CacheStats, DiskCapacityError, StreamCache
from batchcorder._cli.errors import CLIError, note, one_line, os_reason
from batchcorder._cli.interrupts import bounded_stop, cleanup_on_exit
from batchcorder._cli.progress import ingest_progress
from batchcorder._cli.sizes import format_size, written_size
from batchcorder._cli.sources import Source, open_source

__all__ = ["cache_session", "cached_source", "check_cache_options", "format_stats", "ingest"]


def check_cache_options(args: argparse.Namespace, stderr: TextIO) -> None:
    """Refuse cache options that do not go together; warn about one that does nothing.

    Examples
    --------
    >>> import sys
    >>> options = dict(disk=None, disk_capacity=None, memory_capacity=2**20, quiet=False)
    >>> check_cache_options(argparse.Namespace(**options), sys.stdout)
    batchcorder: warning: --memory-capacity has no effect without --disk: a memory-only cache keeps every batch
    """
    if args.disk is not None and args.disk_capacity is None:
        raise CLIError(
            "--disk needs --disk-capacity, the most the cache file may grow to "
            "(e.g. --disk-capacity 10GiB)"
        )
    if args.disk is None and args.disk_capacity is not None:
        raise CLIError("--disk-capacity needs --disk, the directory for the cache file")
    if args.disk is None and args.memory_capacity is not None:
        note(
            stderr,
            "warning: --memory-capacity has no effect without --disk: "
            "a memory-only cache keeps every batch",
            quiet=args.quiet,
        )


@contextmanager
def cache_session(
    reader: Any,
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
) -> Iterator[StreamCache]:
    """A ``StreamCache`` over ``reader`` (disk mode with ``disk``), closed on the way out.

    Closing removes the cache file, and the directories of ``disk`` that did
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
    created = None  # the outermost directory of ``disk`` that does not exist yet
    if disk is not None:
        path = Path(disk).absolute()
        while not path.exists() and path != path.parent:
            created, path = path, path.parent
    disk_file = None

    def remove_files() -> None:
        if disk_file is not None:
            disk_file.unlink(missing_ok=True)
        if created is not None:  # the command's own directory: nothing in it outlives the run
            shutil.rmtree(created, ignore_errors=True)

    try:
        try:
            memory = None if disk is None else memory_capacity  # memory mode keeps it all
            cache = StreamCache(reader, memory, disk, disk_capacity)
        except ValueError as error:
            raise CLIError(one_line(error)) from error
        except OSError as error:
            message = f"cannot create the cache file in {disk!r}: {os_reason(error)}"
            raise CLIError(message) from error
        with cache:
            disk_file = cache.disk_file
            with cleanup_on_exit(remove_files):
                yield cache
    finally:
        remove_files()


@contextmanager
def cached_source(args: argparse.Namespace, stderr: TextIO) -> Iterator[tuple[Source, StreamCache]]:
    """Open ``args.source`` and a :func:`cache_session` over it, by the cache options."""
    check_cache_options(args, stderr)
    opened = open_source(args.source, args.stdin)
    try:
        with cache_session(
            opened.reader, args.disk, args.disk_capacity, args.memory_capacity
        ) as cache:
            yield opened, cache
    finally:
        opened.close()


def ingest(
    cache: StreamCache,
    source: Source,
    stderr: TextIO,
    *,
    quiet: bool = False,
    disk_capacity: int | None = None,
) -> int:
    """Pull the whole source into ``cache`` (a progress bar on a terminal); the batch count.

    A source unreadable half-way, or a cache file outgrowing ``disk_capacity``
    (as it was written), raises :class:`CLIError`.
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
