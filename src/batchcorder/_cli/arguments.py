"""What the subcommands share in parsing: one-line usage errors, option types, common options.

Nothing here imports an engine or pyarrow's readers: ``batchcorder --help``
needs only this.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import NoReturn

from batchcorder._cli.sizes import Size, parse_size
from batchcorder._engines import SQL_ENGINES

__all__ = [
    "ENGINES",
    "FORMATS",
    "CommandParser",
    "CommandsFormatter",
    "Parser",
    "UsageError",
    "add_common_options",
    "add_source_argument",
    "count",
    "engine_list",
    "size",
]

#: The values of ``--engine``, the default first: the engine table's SQL engines.
ENGINES = SQL_ENGINES
#: The values of ``--format``, the default first.
FORMATS = ("table", "csv", "json", "arrow")


class UsageError(Exception):
    """A command line that does not parse."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, handled by ``main``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class CommandParser(Parser):
    """A subcommand's parser: options may come between the positional arguments.

    Examples
    --------
    >>> parser = CommandParser(prog="x")
    >>> _ = parser.add_argument("sql", nargs="+")
    >>> _ = parser.add_argument("-e")
    >>> args = parser.parse_args(["a", "-e", "polars", "b"])
    >>> args.sql, args.e
    (['a', 'b'], 'polars')
    """

    _intermixing = False

    # Typeshed declares overloads (a namespace's type); this override keeps one signature.
    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # parse_known_intermixed_args calls parse_known_args itself (Python < 3.13).
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return super().parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


class CommandsFormatter(argparse.RawDescriptionHelpFormatter):
    """Lists the subcommands once, under "commands", each with its help line."""

    def _format_action(self, action: argparse.Action) -> str:
        if isinstance(action, argparse._SubParsersAction):
            return "".join(
                super(CommandsFormatter, self)._format_action(command)
                for command in action._get_subactions()
            )
        return super()._format_action(action)


def size(text: str) -> Size:
    """An option's byte size, e.g. ``--disk-capacity 2GiB``."""
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def count(minimum: int) -> Callable[[str], int]:
    """A whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def engine_list(text: str) -> list[str]:
    """A comma-separated list of engines, e.g. ``duckdb,polars``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in ENGINES for name in names):
        raise argparse.ArgumentTypeError(
            f"invalid engines {text!r}: use a comma-separated list of {', '.join(ENGINES)}"
        )
    return names


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The cache options, ``--quiet`` and ``--debug``."""
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
        type=size,
        help="disk mode: the most the cache file may grow to, e.g. 10GiB",
    )
    group.add_argument(
        "--memory-capacity",
        metavar="SIZE",
        type=size,
        help="disk mode: bytes of recent batches kept in RAM",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no warnings"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks instead of one-line errors"
    )


def add_source_argument(parser: argparse.ArgumentParser) -> None:
    """The ``SOURCE`` positional argument of the commands that read one."""
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="a Parquet, CSV/TSV or Arrow IPC file, or - for an Arrow IPC stream on standard input",
    )
