"""``batchcorder query``: cache one source, then run SQL statements over it."""

from __future__ import annotations

import argparse
import time
from typing import Any

from batchcorder._cli.arguments import add_command, count
from batchcorder._cli.errors import CLIError, is_terminal, standard_streams
from batchcorder._cli.interrupts import interrupted
from batchcorder._engines import SQL_ENGINES

__all__ = ["add_parser", "run_query"]

#: Rows of each result the table format shows by default (``--max-rows``).
DEFAULT_MAX_ROWS = 100

_EPILOG = """\
examples:
  batchcorder query events.parquet "SELECT count(*) FROM src"
  some-producer | batchcorder query - "SELECT ..." "SELECT ..." --stats
  batchcorder query big.csv "SELECT * FROM src WHERE x > 0" --format arrow \\
      | batchcorder query - "SELECT avg(x) FROM src"

Formats, sizes and exit statuses:
  https://github.com/batchcorder/batchcorder/blob/main/docs/how-to/cli.md
"""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``query`` subcommand to ``commands`` (what ``add_subparsers`` returned)."""
    parser = add_command(
        commands,
        "query",
        run_query,
        help="cache a Parquet, CSV or Arrow IPC file, or an Arrow IPC stream on standard "
        "input, and run SQL statements over it as table src",
        description="Cache SOURCE and run each SQL statement over it, as table src, in order.",
        epilog=_EPILOG,
    )
    parser.add_argument(
        "sql", metavar="SQL", nargs="+", help="SQL statements over table src, one per argument"
    )
    parser.add_argument(
        "-e", "--engine", choices=SQL_ENGINES, default="duckdb", help="SQL engine (default duckdb)"
    )
    parser.add_argument(
        "-f",
        "--format",
        choices=("table", "csv", "json", "arrow"),
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
    return parser


def run_query(args: argparse.Namespace) -> int:
    """Cache SOURCE, register it as table ``src``, run the statements in order; return 0.

    The whole source is ingested first, then each statement's result is
    written. The cache, and its file, is removed on the way out, also on
    error or Ctrl-C. Bad input raises :class:`CLIError`.
    """
    from batchcorder._cli.caching import cached_source, format_stats, ingest
    from batchcorder._cli.engines import check_statements, open_engine, run_statement
    from batchcorder._cli.output import ResultWriter

    stdout, stderr = standard_streams(args.stdout, args.stderr)
    if args.format == "arrow" and is_terminal(stdout):
        raise CLIError(
            "--format arrow writes binary data: redirect standard output to a file or a pipe"
        )
    session = open_engine(args.engine)
    try:
        check_statements(args.sql)
        with cached_source(args, stderr) as (opened, cache):
            started = time.perf_counter()
            ingest(cache, opened, stderr, quiet=args.quiet, disk_capacity=args.disk_capacity)
            stats = cache.stats
            report = [
                f"ingest: {_plural(stats.ingested_rows, 'row')} in "
                f"{_plural(stats.ingested_batches, 'batch')}, "
                f"{(time.perf_counter() - started) * 1000:.1f} ms"
            ]
            session.register("src", cache)
            writer = ResultWriter(args.format, stdout, max_rows=args.max_rows)

            def run_all() -> None:
                for number, sql in enumerate(args.sql, start=1):
                    begun = time.perf_counter()
                    rows = run_statement(session, number, sql, writer.write)
                    shown = "no result" if rows is None else _plural(rows, "row")
                    took = (time.perf_counter() - begun) * 1000
                    report.append(f"statement {number}: {shown}, {took:.1f} ms")

            try:
                session.run(run_all)
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


def _plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``, ``3 batches``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count:,} {noun}{'es' if noun.endswith('ch') else 's'}"
