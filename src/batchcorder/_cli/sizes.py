"""Byte sizes on the command line: parse ``512MB`` or ``2GiB``, print ``1.5 GiB``."""

from __future__ import annotations

import re

__all__ = ["format_size", "parse_size"]

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """Parse a byte size such as ``512MB``, ``2GiB``, ``1.5G`` or ``1048576``.

    ``KB``, ``MB``, ``GB`` and ``TB`` are powers of 1000; ``KiB``, ``MiB``,
    ``GiB`` and ``TiB`` are powers of 1024, and so are the one-letter forms
    ``K``, ``M``, ``G`` and ``T`` (as in ``java -Xmx2G``). Case does not
    matter; a bare number is a count of bytes.

    Parameters
    ----------
    text : str
        The size as typed.

    Returns
    -------
    int
        The size in bytes, rounded down to a whole byte.

    Raises
    ------
    ValueError
        If ``text`` is not a size, or is zero.

    Examples
    --------
    >>> parse_size("512MB")
    512000000
    >>> parse_size("2GiB")
    2147483648
    >>> parse_size("1.5 k")
    1536
    >>> parse_size("12XB")
    Traceback (most recent call last):
    ...
    ValueError: invalid size '12XB': use a number with an optional unit, such as 512MB or 2GiB
    """
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"invalid size {text!r}: use a number with an optional unit, such as 512MB or 2GiB"
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"invalid size {text!r}: it must be at least one byte")
    return size


def format_size(size: int) -> str:
    """Format a byte count for people, in powers of 1024.

    Parameters
    ----------
    size : int
        A number of bytes.

    Returns
    -------
    str
        For example ``'512 B'``, ``'1.5 KiB'`` or ``'2.0 GiB'``.

    Examples
    --------
    >>> format_size(512)
    '512 B'
    >>> format_size(1536)
    '1.5 KiB'
    >>> format_size(parse_size("2GiB"))
    '2.0 GiB'
    """
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
