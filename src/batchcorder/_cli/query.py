"""``batchcorder query``: cache one source, then run SQL statements over it."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from batchcorder._cli.arguments import (
    ENGINES,
    FORMATS,
    add_source_argument,
    command_keywords,
    count,
)
from batchcorder._cli.errors import CLIError, is_terminal, standard_streams
from batchcorder._cli.interrupts import interrupted

if TYPE_CHECKING:
    from batchcorder import StreamCache
    from batchcorder._cli.engines import Engine
    from batchcorder._cli.output import ResultWriter

__all__ = ["add_query_parser", "query", "run_query"]

#: Rows of each result the table format shows by default: a screenful or two;
#: ``--max-rows 0`` or another format shows them all.
DEFAULT_MAX_ROWS = 100

_EPILOG = """\
examples:
  batchcorder query events.parquet "SELECT count(*) FROM src"
  some-producer | batchcorder query - "SELECT ..." "SELECT ..." --stats
  batchcorder query big.csv "SELECT * FROM src WHERE x > 0" --format arrow \\
      | batchcorder query - "SELECT avg(x) FROM src"

The source is read once, into the cache, however many statements follow.
Each SQL argument is one statement; options may come between them.
Statements that return no table (CREATE VIEW, INSERT, ...) write nothing.
Sizes take units: 512MB, 2GiB, 1.5G (KB/MB/GB are powers of 1000,
KiB/MiB/GiB and K/M/G powers of 1024). With --format arrow, each statement's
result is its own Arrow IPC stream, written back to back.
"""


def add_query_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``query`` subcommand to ``commands`` (what ``add_subparsers`` returned).

    Examples
    --------
    >>> import argparse
    >>> from batchcorder._cli.arguments import CommandParser
    >>> parser = argparse.ArgumentParser(prog="batchcorder")
    >>> _ = add_query_parser(parser.add_subparsers(parser_class=CommandParser))
    >>> args = parser.parse_args(["query", "f.parquet", "SELECT 1", "-e", "polars", "SELECT 2"])
    >>> args.sql, args.engine, args.run is run_query
    (['SELECT 1', 'SELECT 2'], 'polars', True)
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        "query",
        help="cache a Parquet, CSV or Arrow IPC file, or an Arrow IPC stream on standard "
        "input, and run SQL statements over it as table src",
        description="Cache SOURCE and run each SQL statement over it, as table src, in order.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_argument(parser)
    parser.add_argument(
        "sql", metavar="SQL", nargs="+", help="SQL statements over table src, one per argument"
    )
    parser.add_argument(
        "-e", "--engine", choices=ENGINES, default="duckdb", help="SQL engine (default duckdb)"
    )
    parser.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        default="table",
        help="output: aligned table (default), CSV, JSON lines, or Arrow IPC streams",
    )
    parser.add_argument(
        "--max-rows",
        metavar="N",
        type=count(0),
        default=DEFAULT_MAX_ROWS,
        help=f"table format: rows shown per result (default {DEFAULT_MAX_ROWS}; 0 shows all)",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="print timings and the cache's stats to standard error at the end",
    )
    parser.set_defaults(run=run_query)
    return parser


def run_query(args: argparse.Namespace) -> int:
    """Run ``batchcorder query`` with parsed arguments; see :func:`query`."""
    return query(
        args.source,
        args.sql,
        fmt=args.format,
        **command_keywords(args, "engine", "max_rows", "stats"),
    )


def query(
    source: str,
    statements: Sequence[str],
    *,
    engine: str = "duckdb",
    fmt: str = "table",
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    stats: bool = False,
    quiet: bool = False,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Cache ``source``, register it as table ``src``, run ``statements`` in order.

    The whole source is ingested first (with a progress bar on a terminal),
    then each statement runs over the cache and its result is written to
    ``stdout`` in ``fmt``; the source is read exactly once however many
    statements there are. A statement that returns no table (``CREATE
    VIEW``, ``INSERT``, ...) writes nothing. The cache, and in disk mode its
    file, is removed on the way out, also on error or Ctrl-C.

    Parameters
    ----------
    source : str
        A Parquet, CSV/TSV or Arrow IPC file, or ``-`` for an Arrow IPC
        stream on ``stdin``.
    statements : sequence of str
        SQL statements over table ``src``, one per string: a string holding
        none or several is refused before the source is read.
    engine : {"duckdb", "polars", "datafusion"}, default "duckdb"
        The engine running the statements.
    fmt : {"table", "csv", "json", "arrow"}, default "table"
        Output format; see :class:`~batchcorder._cli.output.ResultWriter`.
    disk, disk_capacity, memory_capacity : optional
        Disk mode: the cache file's directory and byte budget, and the bytes
        kept in RAM.
    max_rows : int, default 100
        ``table`` format: rows shown per result (0: all).
    stats : bool, default False
        Write the ingest and statement timings and the cache's stats to
        ``stderr`` at the end.
    quiet : bool, default False
        No progress bar, no warnings.
    stdin, stdout, stderr : optional
        Streams to use instead of the process's (binary, binary, text).

    Returns
    -------
    int
        0.

    Raises
    ------
    CLIError
        For bad input: an unreadable source, a failing statement, ...

    Examples
    --------
    >>> import io
    >>> import pyarrow as pa
    >>> stream = io.BytesIO()
    >>> with pa.ipc.new_stream(stream, pa.schema([("x", pa.int64())])) as writer:
    ...     writer.write_batch(pa.record_batch({"x": [1, 2, 3]}))
    >>> out = io.BytesIO()
    >>> query("-", ["SELECT sum(x) AS s FROM src", "SELECT max(x) AS m FROM src"],
    ...       fmt="csv", stdin=io.BytesIO(stream.getvalue()), stdout=out)
    0
    >>> print(out.getvalue().decode(), end="")
    "s"
    6
    <BLANKLINE>
    "m"
    3
    """
    from batchcorder._cli.caching import cached_source, format_stats, warn_about_cache_options
    from batchcorder._cli.engines import check_statements, open_engine
    from batchcorder._cli.output import ResultWriter

    stdout, stderr = standard_streams(stdout, stderr)
    warn_about_cache_options(disk, disk_capacity, memory_capacity, stderr, quiet=quiet)
    if fmt == "arrow" and is_terminal(stdout):
        raise CLIError(
            "--format arrow writes binary data: redirect standard output to a file or a pipe"
        )
    session = open_engine(engine)
    try:
        check_statements(session, list(statements))
        with cached_source(source, stdin, disk, disk_capacity, memory_capacity) as (
            opened,
            cache,
        ):
            try:
                report = [
                    _timed_ingest(cache, opened, stderr, quiet=quiet, disk_capacity=disk_capacity)
                ]
                session.register("src", cache)
                writer = ResultWriter(fmt, stdout, max_rows=max_rows)
                report.extend(_run_statements(session, statements, writer))
            finally:
                if not interrupted():  # an engine that is being stopped may not close
                    session.close()
            if stats:
                report.append(f"cache stats ({engine}):")
                stderr.write("\n".join(report) + "\n" + format_stats(cache.stats))
                stderr.flush()
    finally:
        if not interrupted():
            session.close()
    return 0


def _timed_ingest(cache: StreamCache, source: Any, stderr: TextIO, **options: Any) -> str:
    """:func:`ingest`, then the line of the ``--stats`` report that says how long it took."""
    from batchcorder._cli.caching import ingest

    started = time.perf_counter()
    ingest(cache, source, stderr, **options)
    return _ingest_line(cache, time.perf_counter() - started)


def _run_statements(session: Engine, statements: Sequence[str], writer: ResultWriter) -> list[str]:
    """Run every statement in order, writing its result; one ``--stats`` line each."""
    from batchcorder._cli.engines import run_statement

    report: list[str] = []

    def run_all() -> None:
        for number, sql in enumerate(statements, start=1):
            begun = time.perf_counter()
            rows = run_statement(session, number, sql, writer.write)
            took = (time.perf_counter() - begun) * 1000
            shown = "no result" if rows is None else _plural(rows, "row")
            report.append(f"statement {number}: {shown}, {took:.1f} ms")

    session.run(run_all)
    return report


def _ingest_line(cache: StreamCache, seconds: float) -> str:
    stats = cache.stats
    return (
        f"ingest: {_plural(stats.ingested_rows, 'row')} in "
        f"{_plural(stats.ingested_batches, 'batch')}, {seconds * 1000:.1f} ms"
    )


def _plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``, ``3 batches``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count:,} {noun}{'es' if noun.endswith('ch') else 's'}"
