"""Byte sizes on the command line: parse ``512MB`` or ``2GiB``, print ``1.5 GiB``."""

from __future__ import annotations

import argparse
import re

__all__ = ["Size", "format_size", "parse_size", "written_size"]

_POWERS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt]?)(b?)|([kmgt])ib)\s*", re.IGNORECASE)


class Size(int):
    """A byte count that remembers how it was written, to say it back the same way."""

    written: str


def parse_size(text: str) -> Size:
    """Parse ``512MB`` (powers of 1000), ``2GiB``, ``1.5G`` (powers of 1024) or ``1048576``.

    Examples
    --------
    >>> parse_size("512MB"), parse_size("2GiB"), parse_size("1.5 k"), parse_size("10MB").written
    (512000000, 2147483648, 1536, '10MB')
    >>> parse_size("12XB")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: invalid size '12XB': use a number with an optional unit, such as 512MB or 2GiB
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use a number with an optional unit, such as 512MB or 2GiB"
        )
    number, decimal_prefix, byte, binary_prefix = match.groups()
    prefix = (binary_prefix or decimal_prefix or "").lower()
    base = 1000 if decimal_prefix and byte else 1024
    size = Size(float(number) * base ** _POWERS[prefix])
    if size <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: it must be at least one byte")
    size.written = text.strip()
    return size


def format_size(size: int) -> str:
    """A byte count in powers of 1024: ``'512 B'``, ``'1.5 KiB'``, ``'2.0 GiB'``."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


def written_size(size: int) -> str:
    """``size`` as the user wrote it, with its bytes: ``10MB (10,000,000 bytes)``.

    Examples
    --------
    >>> written_size(parse_size("10MB")), written_size(2048)
    ('10MB (10,000,000 bytes)', '2,048 bytes (2.0 KiB)')
    """
    written = getattr(size, "written", None)
    if written is None:
        return f"{size:,} bytes" + (f" ({format_size(size)})" if size >= 1024 else "")
    return f"{written} ({size:,} bytes)" if written != str(int(size)) else f"{size:,} bytes"
