"""Parsing shared by the subcommands: one-line usage errors, option types, common options.

Nothing here imports an engine: ``batchcorder --help`` needs only this.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from batchcorder._cli.sizes import parse_size

__all__ = [
    "BATCH_ROWS",
    "CommandParser",
    "CommandsFormatter",
    "Parser",
    "UsageError",
    "add_command",
    "add_common_options",
    "count",
]

#: Rows per batch where the command chooses (Parquet, the demo): pyarrow's own default.
BATCH_ROWS = 65_536


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
            subactions = action._get_subactions()
            return "".join(super(CommandsFormatter, self)._format_action(a) for a in subactions)
        return super()._format_action(action)


def count(minimum: int, maximum: int | None = None, what: str = "number") -> Callable[[str], int]:
    """A whole number of at least ``minimum`` (and at most ``maximum``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}") from None
        if maximum is not None and not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"a {what} is between {minimum} and {maximum}, got {value}"
            )
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_command(
    commands: Any, name: str, run: Callable[[Any], int], *, source: bool = True, **texts: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` (``help``, ``description``, ``epilog`` in ``texts``) running ``run``.

    With ``source``, it takes the ``SOURCE`` argument first.
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        name, formatter_class=argparse.RawDescriptionHelpFormatter, **texts
    )
    if source:
        parser.add_argument(
            "source",
            metavar="SOURCE",
            help="a Parquet, CSV/TSV or Arrow IPC file, or - for an Arrow IPC stream on "
            "standard input",
        )
    parser.set_defaults(run=run)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The cache options, ``--quiet`` and ``--debug``."""
    group = parser.add_argument_group("cache")
    group.add_argument(
        "--disk",
        metavar="DIR",
        help="keep the cache in a file in DIR (disk mode; created if missing, "
        "the file is removed at exit)",
    )
    for option, help in (
        ("--disk-capacity", "disk mode: the most the cache file may grow to, e.g. 10GiB"),
        ("--memory-capacity", "disk mode: bytes of recent batches kept in RAM"),
    ):
        group.add_argument(option, metavar="SIZE", type=parse_size, help=help)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no warnings"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks instead of one-line errors"
    )
