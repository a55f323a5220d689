"""The one exception the command line turns into ``batchcorder: error: ...``."""

from __future__ import annotations

__all__ = ["CLIError", "one_line"]


class CLIError(Exception):
    """Bad input: printed as one line on standard error, exit status 2.

    Examples
    --------
    >>> str(CLIError("unknown file type: 'notes.txt'"))
    "unknown file type: 'notes.txt'"
    """


def one_line(error: BaseException | str) -> str:
    """Squeeze an error message into one line.

    Engines write messages over several lines: the first paragraph says what
    went wrong, later ones show plans, carets or hints. Keep the first
    paragraph and join its lines.

    Parameters
    ----------
    error : BaseException or str
        The error or its message.

    Returns
    -------
    str
        A single line; the exception's type name if it has no message.

    Examples
    --------
    >>> one_line("Catalog Error: Table nope does not exist!\\nDid you mean src?\\n\\nLINE 1: ...")
    'Catalog Error: Table nope does not exist! Did you mean src?'
    >>> one_line(KeyError())
    'KeyError'
    """
    text = str(error).strip()
    if not text and isinstance(error, BaseException):
        return type(error).__name__
    paragraph = text.split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines() if line.strip())
