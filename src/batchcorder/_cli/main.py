"""The ``batchcorder`` command: subcommands, and errors turned into exit statuses.

Exit statuses: 0 success; 2 bad input (one line ``batchcorder: error: ...``
on standard error); 130 interrupted by Ctrl-C (143 by SIGTERM), after the
cache's files are removed; 141 the reader of standard output went away; 1
an unexpected failure (a bug: ``--debug`` shows its traceback), an engine's
panic included.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import BinaryIO, TextIO

from batchcorder import __version__
from batchcorder._cli import demo, query, serve
from batchcorder._cli.arguments import (
    CommandParser,
    CommandsFormatter,
    Parser,
    UsageError,
    add_common_options,
)
from batchcorder._cli.errors import CLIError, EngineCrash, engine_panic, one_line
from batchcorder._cli.interrupts import exit_interrupted, handle_signals, interrupted

__all__ = ["EXIT_BROKEN_PIPE", "build_parser", "main"]

EXIT_BAD_INPUT = 2
#: The reader of standard output went away: 128 + SIGPIPE, as ``cat`` gives.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
EXIT_UNEXPECTED = 1

#: PyPI's batchcorder 0.1.3 is another package, without this command.
_VERSION = f"batchcorder {__version__} (pure-Python build; PyPI's 0.1.3 is a different package)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``batchcorder`` command.

    Examples
    --------
    >>> args = build_parser().parse_args(["query", "-", "SELECT 1", "-f", "csv", "SELECT 2"])
    >>> args.command, args.source, args.sql, args.format, args.engine
    ('query', '-', ['SELECT 1', 'SELECT 2'], 'csv', 'duckdb')
    >>> build_parser().parse_args(["demo", "--rows", "1000", "--disk-capacity", "1GiB"]).disk_capacity
    1073741824
    """
    parser = Parser(
        prog="batchcorder",
        description="Make a one-shot Arrow stream replayable, and query it many times.",
        formatter_class=CommandsFormatter,
    )
    parser.add_argument("--version", action="version", version=_VERSION)
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=CommandParser
    )
    for command in (query, demo, serve):
        add_common_options(command.add_parser(commands))
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``batchcorder`` command on ``argv`` (``sys.argv[1:]``); return its exit status.

    ``stdin``, ``stdout`` (binary) and ``stderr`` (text) replace the
    process's streams. After Ctrl-C or SIGTERM the process ends here, once
    the cache's files are removed (``os._exit``: no engine thread holds it up).

    Examples
    --------
    >>> import io
    >>> out = io.BytesIO()
    >>> main(["demo", "--rows", "1000", "--engines", "duckdb", "-q"], stdout=out)
    0
    >>> print(out.getvalue().decode().splitlines()[-1])  # doctest: +ELLIPSIS
    upstream batches produced: 1, each exactly once; the cache served ... readers to 12 queries
    >>> main(["query", "data.parquet", "SELECT 1", "--disk-capacity", "lots"])
    2
    """
    errors = sys.stderr if stderr is None else stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return _fail(errors, str(error), EXIT_BAD_INPUT)
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    if args.command is None:
        parser.print_help(errors)
        return EXIT_BAD_INPUT
    args.stdin, args.stdout, args.stderr = stdin, stdout, stderr
    with handle_signals():
        return _run_command(args, errors, stdout)


def _run_command(args: argparse.Namespace, errors: TextIO, stdout: BinaryIO | None) -> int:
    """Run the parsed command; its exit status, from its failure if it fails (or ``--debug``)."""
    try:
        status: int = args.run(args)
    except BrokenPipeError:
        if stdout is None:  # let Python exit without more errors
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (Exception, KeyboardInterrupt) as error:
        if args.debug:
            raise
        return _failure_status(error, errors)
    except BaseException as error:
        # An engine's panic outside a statement (a PanicException is no Exception).
        if engine_panic(error, "an engine") is None or args.debug:
            raise
        return _failure_status(error, errors)
    return status


def _failure_status(error: BaseException, errors: TextIO) -> int:
    """Report ``error`` on ``errors``; the exit status it means (an interruption exits here)."""
    if isinstance(error, KeyboardInterrupt) or interrupted():
        # After Ctrl-C (or SIGTERM) any failure is the stop's doing: a producer
        # killed by the same signal leaves its stream without its end marker.
        errors.write("batchcorder: interrupted\n")
        exit_interrupted()
    if isinstance(error, CLIError):
        return _fail(errors, str(error), EXIT_BAD_INPUT)
    panic = None if isinstance(error, EngineCrash) else engine_panic(error, "an engine")
    if panic is not None:  # a panic outside a statement
        error = EngineCrash(one_line(panic))
    if isinstance(error, EngineCrash):
        message = f"{error} (a bug of the engine; --debug shows the traceback)"
        return _fail(errors, message, EXIT_UNEXPECTED)
    message = f"unexpected {type(error).__name__}: {one_line(error)} (run again with --debug for the traceback)"
    return _fail(errors, message, EXIT_UNEXPECTED)


def _fail(stderr: TextIO, message: str, status: int) -> int:
    stderr.write(f"batchcorder: error: {message}\n")
    stderr.flush()
    return status
