"""The process's standard streams as the commands use them.

Every command takes its streams as arguments (so tests and other programs
can pass their own) and falls back on the process's; messages to people
are one line each, prefixed ``batchcorder:``.
"""

from __future__ import annotations

import sys
from typing import BinaryIO, TextIO

__all__ = ["is_terminal", "note", "standard_streams"]


def standard_streams(stdout: BinaryIO | None, stderr: TextIO | None) -> tuple[BinaryIO, TextIO]:
    """``stdout`` and ``stderr``, or the process's own where they are None.

    Examples
    --------
    >>> import io
    >>> out = io.BytesIO()
    >>> standard_streams(out, None) == (out, sys.stderr)
    True
    """
    return (
        sys.stdout.buffer if stdout is None else stdout,
        sys.stderr if stderr is None else stderr,
    )


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is an open terminal.

    Examples
    --------
    >>> import io
    >>> is_terminal(io.StringIO())
    False
    """
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def note(stderr: TextIO, message: str, *, quiet: bool = False) -> None:
    """Write ``batchcorder: <message>`` on its own line, unless ``quiet``.

    Examples
    --------
    >>> note(sys.stdout, "warning: no --disk")
    batchcorder: warning: no --disk
    >>> note(sys.stdout, "not shown", quiet=True)
    """
    if quiet:
        return
    stderr.write(f"batchcorder: {message}\n")
    stderr.flush()
