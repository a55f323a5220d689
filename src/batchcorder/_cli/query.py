"""``batchcorder query``: cache one source, then run SQL statements over it."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from batchcorder._cli.arguments import (
    ENGINES,
    FORMATS,
    add_source_argument,
    count,
)
from batchcorder._cli.errors import CLIError, is_terminal, standard_streams
from batchcorder._cli.interrupts import interrupted

if TYPE_CHECKING:
    from batchcorder import StreamCache
    from batchcorder._cli.engines import Engine
    from batchcorder._cli.output import ResultWriter

__all__ = ["add_query_parser", "run_query"]

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
    """Add the ``query`` subcommand to ``commands`` (what ``add_subparsers`` returned)."""
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
    """Cache SOURCE, register it as table ``src``, run the statements in order; return 0.

    The whole source is ingested first (a progress bar on a terminal), then
    each statement's result is written to standard output, so the source is
    read once however many statements there are; a statement that returns no
    table writes nothing. The cache, and its file, is removed on the way out,
    also on error or Ctrl-C. Bad input raises :class:`CLIError`.
    """
    from batchcorder._cli.caching import cached_source, format_stats, warn_about_cache_options
    from batchcorder._cli.engines import check_statements, open_engine
    from batchcorder._cli.output import ResultWriter

    stdout, stderr = standard_streams(args.stdout, args.stderr)
    warn_about_cache_options(
        args.disk, args.disk_capacity, args.memory_capacity, stderr, quiet=args.quiet
    )
    if args.format == "arrow" and is_terminal(stdout):
        raise CLIError(
            "--format arrow writes binary data: redirect standard output to a file or a pipe"
        )
    session = open_engine(args.engine)
    try:
        check_statements(session, args.sql)
        with cached_source(
            args.source, args.stdin, args.disk, args.disk_capacity, args.memory_capacity
        ) as (opened, cache):
            try:
                report = [_timed_ingest(cache, opened, stderr, args)]
                session.register("src", cache)
                writer = ResultWriter(args.format, stdout, max_rows=args.max_rows)
                report.extend(_run_statements(session, args.sql, writer))
            finally:
                if not interrupted():  # an engine that is being stopped may not close
                    session.close()
            if args.stats:
                report.append(f"cache stats ({args.engine}):")
                stderr.write("\n".join(report) + "\n" + format_stats(cache.stats))
                stderr.flush()
    finally:
        if not interrupted():
            session.close()
    return 0


def _timed_ingest(cache: StreamCache, source: Any, stderr: TextIO, args: Any) -> str:
    """Ingest, then the line of the ``--stats`` report that says how long it took."""
    from batchcorder._cli.caching import ingest

    started = time.perf_counter()
    ingest(cache, source, stderr, quiet=args.quiet, disk_capacity=args.disk_capacity)
    seconds, stats = time.perf_counter() - started, cache.stats
    return (
        f"ingest: {_plural(stats.ingested_rows, 'row')} in "
        f"{_plural(stats.ingested_batches, 'batch')}, {seconds * 1000:.1f} ms"
    )


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


def _plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``, ``3 batches``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count:,} {noun}{'es' if noun.endswith('ch') else 's'}"
