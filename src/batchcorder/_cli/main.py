"""The ``batchcorder`` command: argument parsing, and errors turned into exit statuses.

Exit statuses: 0 success; 2 bad input (one line ``batchcorder: error: ...``
on standard error); 130 interrupted by Ctrl-C (143 by SIGTERM), after the
cache's files are removed; 1 an unexpected failure (a bug: ``--debug`` shows
its traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from batchcorder._cli.engines import ENGINES
from batchcorder._cli.errors import CLIError, one_line
from batchcorder._cli.interrupts import abandoned_workers, exit_status, handle_signals
from batchcorder._cli.output import FORMATS
from batchcorder._cli.sizes import parse_size

__all__ = ["build_parser", "main"]


_DESCRIPTION = """\
Make a one-shot Arrow stream replayable, and query it many times.

commands:
  query   cache a Parquet, CSV or Arrow IPC file, or an Arrow IPC stream on
          standard input, and run SQL statements over it as table src
  demo    query a synthetic stream with DuckDB, Polars and DataFusion over
          one cache, and show that the stream was read exactly once
"""

_QUERY_EPILOG = """\
examples:
  batchcorder query events.parquet "SELECT count(*) FROM src"
  some-producer | batchcorder query - "SELECT ..." "SELECT ..." --stats
  batchcorder query big.csv "SELECT * FROM src WHERE x > 0" --format arrow \\
      | batchcorder query - "SELECT avg(x) FROM src"

The source is read once, into the cache, however many statements follow.
Sizes take units: 512MB, 2GiB, 1.5G (KB/MB/GB are powers of 1000,
KiB/MiB/GiB and K/M/G powers of 1024). With --format arrow, each statement's
result is its own Arrow IPC stream, written back to back.
"""


class _UsageError(Exception):
    """A command line that does not parse."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, handled by :func:`main`."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _engine_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"invalid engines {text!r}: use a comma-separated list of {', '.join(ENGINES)}"
        )
    return names


def _add_cache_options(parser: argparse.ArgumentParser, demo: bool = False) -> None:
    group = parser.add_argument_group("cache")
    group.add_argument(
        "--disk",
        metavar="DIR",
        help="keep the cache in a file in DIR (disk mode; created if missing, "
        "the file is removed at exit)",
    )
    group.add_argument(
        "--disk-capacity",
        metavar="SIZE",
        type=_size,
        help="the most the cache file may grow to"
        + (" (default 4GiB)" if demo else "; required with --disk"),
    )
    group.add_argument(
        "--memory-capacity",
        metavar="SIZE",
        type=_size,
        help="disk mode: bytes of recent batches kept in RAM"
        + (" (default 32MiB)" if demo else " (default: all RAM)"),
    )


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no warnings"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks instead of one-line errors"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``batchcorder`` command.

    Examples
    --------
    >>> args = build_parser().parse_args(["query", "-", "SELECT 1", "--format", "csv"])
    >>> args.command, args.source, args.sql, args.format, args.engine
    ('query', '-', ['SELECT 1'], 'csv', 'duckdb')
    >>> build_parser().parse_args(["demo", "--rows", "1000", "--disk-capacity", "1GiB"]).disk_capacity
    1073741824
    """
    parser = _Parser(
        prog="batchcorder",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    query = commands.add_parser(
        "query",
        help="run SQL statements over a cached source",
        description="Cache SOURCE and run each SQL statement over it, as table src, in order.",
        epilog=_QUERY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    query.add_argument(
        "source",
        metavar="SOURCE",
        help="a Parquet, CSV/TSV or Arrow IPC file, or - for an Arrow IPC stream on standard input",
    )
    query.add_argument("sql", metavar="SQL", nargs="+", help="SQL statements over table src")
    query.add_argument(
        "-e", "--engine", choices=ENGINES, default="duckdb", help="SQL engine (default duckdb)"
    )
    query.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        default="table",
        help="output: aligned table (default), CSV, JSON lines, or Arrow IPC streams",
    )
    query.add_argument(
        "--max-rows",
        metavar="N",
        type=_count(0),
        default=100,
        help="table format: rows shown per result (default 100; 0 shows all)",
    )
    query.add_argument(
        "--stats",
        action="store_true",
        help="print timings and the cache's stats to standard error at the end",
    )
    _add_cache_options(query)
    _add_common_options(query)
    query.set_defaults(run=_run_query)

    demo = commands.add_parser(
        "demo",
        help="query a synthetic stream with three engines over one cache",
        description="Ingest a deterministic synthetic event stream into one cache, then ask "
        "DuckDB, Polars and DataFusion the same questions over it, several rounds; print "
        "timings, answers and the cache's stats. Needs no network and no files.",
    )
    demo.add_argument(
        "--rows", type=_count(1), default=2_000_000, help="synthetic rows (default 2000000)"
    )
    demo.add_argument(
        "--batch-rows", type=_count(1), default=65_536, help="rows per batch (default 65536)"
    )
    demo.add_argument(
        "--rounds",
        type=_count(1),
        default=3,
        help="times each engine asks each question (default 3)",
    )
    demo.add_argument(
        "--seed", type=int, default=42, help="seed of the synthetic data (default 42)"
    )
    demo.add_argument(
        "--engines",
        type=_engine_list,
        default=list(ENGINES),
        metavar="LIST",
        help="comma-separated engines (default duckdb,polars,datafusion)",
    )
    _add_cache_options(demo, demo=True)
    _add_common_options(demo)
    demo.set_defaults(run=_run_demo)
    return parser


def _run_query(args: argparse.Namespace) -> int:
    from batchcorder._cli.query import query

    return query(
        args.source,
        args.sql,
        engine=args.engine,
        fmt=args.format,
        disk=args.disk,
        disk_capacity=args.disk_capacity,
        memory_capacity=args.memory_capacity,
        max_rows=args.max_rows,
        stats=args.stats,
        quiet=args.quiet,
    )


def _run_demo(args: argparse.Namespace) -> int:
    from batchcorder._cli.demo import demo

    return demo(
        args.rows,
        batch_rows=args.batch_rows,
        rounds=args.rounds,
        seed=args.seed,
        engines=args.engines,
        disk=args.disk,
        disk_capacity=args.disk_capacity,
        memory_capacity=args.memory_capacity,
        quiet=args.quiet,
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("batchcorder")
    except Exception:
        import batchcorder

        return str(getattr(batchcorder, "__version__", "unknown"))


def _fail(message: str) -> None:
    sys.stderr.write(f"batchcorder: error: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``batchcorder`` command; return its exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 2 for bad input, 130 when interrupted, 1 for an
        unexpected error.

    Examples
    --------
    >>> main(["demo", "--rows", "1000", "--batch-rows", "500", "--engines", "duckdb", "-q"])
    batchcorder demo: 1,000 synthetic events, seed 42, in batches of 500 rows
    ...
    upstream batches produced: 2, each exactly once; the cache served ... readers to 12 queries
    0
    >>> main(["query", "data.parquet", "SELECT 1", "--disk-capacity", "lots"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        _fail(str(error))
        return 2
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug: bool = args.debug
    with handle_signals():
        try:
            status: int = args.run(args)
        except CLIError as error:
            if debug:
                raise
            _fail(str(error))
            return 2
        except KeyboardInterrupt:
            if debug:
                raise
            sys.stderr.write("batchcorder: interrupted\n")
            sys.stderr.flush()
            if abandoned_workers():  # an engine thread that would not stop
                os._exit(exit_status())
            return exit_status()
        except BrokenPipeError:
            _quiet_stdout()
            return 141
        except Exception as error:
            if debug:
                raise
            _fail(
                f"unexpected {type(error).__name__}: {one_line(error)} "
                "(run again with --debug for the traceback)"
            )
            return 1
    return status


def _quiet_stdout() -> None:
    """After the reader of standard output went away, let Python exit without more errors."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
