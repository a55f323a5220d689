"""Errors and messages: ``batchcorder: error: ...``, engine panics, the standard streams."""

from __future__ import annotations

import sys
from typing import BinaryIO, TextIO

from batchcorder._panics import is_engine_panic
from batchcorder.errors import EnginePanicError

__all__ = [
    "CLIError",
    "EngineCrash",
    "engine_panic",
    "is_terminal",
    "note",
    "one_line",
    "os_reason",
    "standard_streams",
]

#: The longest engine message kept on the error line; the rest is cut with "…".
MAX_MESSAGE = 300


class CLIError(Exception):
    """Bad input: printed as one line on standard error, exit status 2."""


class EngineCrash(Exception):
    """An engine panicked (its bug, not bad input): one line on standard error, exit status 1."""


def engine_panic(error: BaseException, engine: str) -> EnginePanicError | None:
    """The engine panic ``error`` is, or was raised from; None if it comes from no panic.

    Examples
    --------
    >>> panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    >>> str(engine_panic(panic("index out of bounds"), "DataFusion"))
    'DataFusion panicked: index out of bounds'
    >>> engine_panic(ValueError("bad SQL"), "DuckDB") is None
    True
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, EnginePanicError):
            return current
        if is_engine_panic(current):
            return EnginePanicError(engine, current)
        current = current.__cause__ or current.__context__
    return None


def one_line(error: BaseException | str, limit: int = MAX_MESSAGE) -> str:
    """An error message's first paragraph (not the engines' plans and carets) on one line.

    Examples
    --------
    >>> one_line("Catalog Error: Table nope does not exist!\\nDid you mean src?\\n\\nLINE 1: ...")
    'Catalog Error: Table nope does not exist! Did you mean src?'
    >>> one_line(KeyError()), one_line("x" * 500, limit=10)
    ('KeyError', 'xxxxxxxxx…')
    """
    text = str(error).strip()
    if not text and isinstance(error, BaseException):
        return type(error).__name__
    paragraph = text.split("\n\n", 1)[0]
    line = " ".join(part.strip() for part in paragraph.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def os_reason(error: OSError) -> str:
    """Why an operating-system call failed, in the system's words when it has them."""
    return error.strerror or one_line(error)


def standard_streams(stdout: BinaryIO | None, stderr: TextIO | None) -> tuple[BinaryIO, TextIO]:
    """``stdout`` and ``stderr``, or the process's own where they are None."""
    return (
        sys.stdout.buffer if stdout is None else stdout,
        sys.stderr if stderr is None else stderr,
    )


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is an open terminal."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # no file, or closed
        return False


def note(stderr: TextIO, message: str, *, quiet: bool = False) -> None:
    """Write ``batchcorder: <message>`` on its own line, unless ``quiet``."""
    if not quiet:
        stderr.write(f"batchcorder: {message}\n")
        stderr.flush()
