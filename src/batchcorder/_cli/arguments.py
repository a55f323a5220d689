"""What the subcommands share in parsing: one-line usage errors, option types, common options."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from batchcorder._cli.engines import ENGINES
from batchcorder._cli.sizes import parse_size

__all__ = [
    "CommandParser",
    "CommandsFormatter",
    "Parser",
    "UsageError",
    "add_cache_options",
    "add_common_options",
    "add_source_argument",
    "cache_keywords",
    "command_keywords",
    "count",
    "engine_list",
    "size",
    "stream_keywords",
]


class UsageError(Exception):
    """A command line that does not parse."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, handled by ``main``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class CommandParser(Parser):
    """A subcommand's parser: options may come between the positional arguments.

    ``query f.parquet "SELECT 1" -e polars "SELECT 2"`` gives two
    statements: the parse is argparse's ``parse_known_intermixed_args``.

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


def size(text: str) -> int:
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
    unknown = [name for name in names if name not in ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"invalid engines {text!r}: use a comma-separated list of {', '.join(ENGINES)}"
        )
    return names


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--disk``, ``--disk-capacity`` and ``--memory-capacity``."""
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


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--debug``."""
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


def cache_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The cache options and ``--quiet`` as keyword arguments of a command's function.

    Examples
    --------
    >>> args = argparse.Namespace(disk=None, disk_capacity=None, memory_capacity=None, quiet=True)
    >>> cache_keywords(args)
    {'disk': None, 'disk_capacity': None, 'memory_capacity': None, 'quiet': True}
    """
    return {
        "disk": args.disk,
        "disk_capacity": args.disk_capacity,
        "memory_capacity": args.memory_capacity,
        "quiet": args.quiet,
    }


def command_keywords(
    args: argparse.Namespace, *options: str, streams: bool = True
) -> dict[str, Any]:
    """The parsed options as keyword arguments of a command's function.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    *options : str
        The command's own options, each passed as the keyword its value is
        stored under (its ``dest``).
    streams : bool, default True
        Add the streams ``main`` was given (:func:`stream_keywords`).

    Returns
    -------
    dict of str to object
        ``options``, then the cache options and ``--quiet``
        (:func:`cache_keywords`), then the streams.

    Examples
    --------
    >>> args = argparse.Namespace(disk=None, disk_capacity=None, memory_capacity=None, quiet=True)
    >>> args.rounds = 3
    >>> command_keywords(args, "rounds", streams=False)
    {'rounds': 3, 'disk': None, 'disk_capacity': None, 'memory_capacity': None, 'quiet': True}
    >>> sorted(command_keywords(args))
    ['disk', 'disk_capacity', 'memory_capacity', 'quiet', 'stderr', 'stdin', 'stdout']
    """
    keywords = {option: getattr(args, option) for option in options}
    keywords.update(cache_keywords(args))
    if streams:
        keywords.update(stream_keywords(args))
    return keywords


def stream_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The streams ``main`` was given (None: the process's own), as keyword arguments.

    Examples
    --------
    >>> stream_keywords(argparse.Namespace())
    {'stdin': None, 'stdout': None, 'stderr': None}
    """
    return {name: getattr(args, name, None) for name in ("stdin", "stdout", "stderr")}
