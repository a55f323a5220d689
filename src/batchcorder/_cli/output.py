"""Write statement results as an aligned table, CSV, JSON lines or Arrow IPC.

Several results go to one output in order. The text formats (``table``,
``csv``, ``json``) put one empty line between two results; ``arrow`` writes
each result as its own complete Arrow IPC stream, back to back, which
``pyarrow.ipc.open_stream`` reads one after the other from the same file.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv

from batchcorder._cli.errors import CLIError, one_line

__all__ = ["FORMATS", "ResultWriter", "format_table", "json_line"]

#: The values of ``--format``.
FORMATS = ("table", "csv", "json", "arrow")

_MAX_CELL = 48
_ELLIPSIS = "…"


class ResultWriter:
    """Write results, one after the other, to a binary stream.

    Parameters
    ----------
    fmt : {"table", "csv", "json", "arrow"}
        The output format.
    out : binary file
        Where to write, e.g. ``sys.stdout.buffer``.
    max_rows : int, default 100
        ``table`` only: show at most this many rows of each result (0: all);
        the footer still counts every row.

    Examples
    --------
    >>> import io
    >>> import pyarrow as pa
    >>> out = io.BytesIO()
    >>> writer = ResultWriter("json", out)
    >>> writer.write(pa.table({"n": [1, 2]}).to_reader())
    2
    >>> writer.write(pa.table({"s": ["a"]}).to_reader())
    1
    >>> print(out.getvalue().decode(), end="")
    {"n": 1}
    {"n": 2}
    <BLANKLINE>
    {"s": "a"}
    """

    def __init__(self, fmt: str, out: BinaryIO, max_rows: int = 100) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.out = out
        self.max_rows = max_rows
        self.results = 0

    def write(self, reader: pa.RecordBatchReader) -> int:
        """Write one result; return its row count.

        Errors of the reader (the engine's) propagate as they are; a value
        the format cannot hold raises :class:`CLIError`.
        """
        if self.results and self.fmt != "arrow":
            self.out.write(b"\n")
        self.results += 1
        write = getattr(self, f"_write_{self.fmt}")
        rows: int = write(reader)
        self.out.flush()
        return rows

    def _write_table(self, reader: pa.RecordBatchReader) -> int:
        shown: list[pa.RecordBatch] = []
        kept = total = 0
        for batch in reader:
            total += batch.num_rows
            if self.max_rows <= 0 or kept < self.max_rows:
                take = batch.num_rows if self.max_rows <= 0 else self.max_rows - kept
                shown.append(batch.slice(0, take))
                kept += min(take, batch.num_rows)
        table = pa.Table.from_batches(shown, schema=reader.schema)
        self.out.write(format_table(table, total_rows=total).encode())
        return total

    def _write_csv(self, reader: pa.RecordBatchReader) -> int:
        total = 0
        with _format_errors("csv"):
            writer = pa_csv.CSVWriter(self.out, reader.schema)
        with writer:
            for batch in reader:
                with _format_errors("csv"):
                    writer.write_batch(batch)
                total += batch.num_rows
        return total

    def _write_json(self, reader: pa.RecordBatchReader) -> int:
        total = 0
        for batch in reader:
            lines = [json_line(row) for row in batch.to_pylist()]
            if lines:
                self.out.write(("\n".join(lines) + "\n").encode())
            total += batch.num_rows
        return total

    def _write_arrow(self, reader: pa.RecordBatchReader) -> int:
        total = 0
        with pa.ipc.new_stream(self.out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                total += batch.num_rows
        return total


@contextmanager
def _format_errors(fmt: str) -> Iterator[None]:
    """Turn Arrow's complaint about a value the format cannot hold into CLIError."""
    try:
        yield
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid) as error:
        raise CLIError(f"cannot write the result as {fmt}: {one_line(error)}") from error


def format_table(table: pa.Table, total_rows: int | None = None, footer: bool = True) -> str:
    """Render a table as aligned text with a row-count footer.

    Numbers are right-aligned, nulls print as ``NULL``, and cells longer than
    48 characters are cut with ``…``.

    Parameters
    ----------
    table : pyarrow.Table
        The rows to show.
    total_rows : int, optional
        Rows in the whole result, when ``table`` holds only the first ones.
    footer : bool, default True
        End with the row count, e.g. ``(2 rows)``.

    Returns
    -------
    str
        The rendering, ending with a newline.

    Examples
    --------
    >>> import pyarrow as pa
    >>> print(format_table(pa.table({"city": ["Oslo", None], "temp": [-3.5, 21.0]})), end="")
    city  temp
    ----  ----
    Oslo  -3.5
    NULL  21.0
    (2 rows)
    >>> print(format_table(pa.table({"n": [1]}), total_rows=1000), end="")
    n
    -
    1
    (1,000 rows, first 1 shown; --max-rows 0 shows all)
    """
    total = table.num_rows if total_rows is None else total_rows
    columns: list[list[str]] = []
    right: list[bool] = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        cells = [_cell(value) for value in column.to_pylist()]
        columns.append([_clip(name), *cells])
        right.append(_is_numeric(column.type))
    lines: list[str] = []
    if columns:
        widths = [max(len(cell) for cell in column) for column in columns]
        header = [column[0].ljust(width) for column, width in zip(columns, widths, strict=True)]
        lines.append("  ".join(header).rstrip())
        lines.append("  ".join("-" * width for width in widths))
        for row in range(1, table.num_rows + 1):
            cells = [
                column[row].rjust(width) if align else column[row].ljust(width)
                for column, width, align in zip(columns, widths, right, strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
    if footer:
        count = f"({total:,} row{'' if total == 1 else 's'}"
        if total > table.num_rows:
            count += f", first {table.num_rows:,} shown; --max-rows 0 shows all"
        lines.append(count + ")")
    return "\n".join(lines) + "\n"


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _clip(text: str) -> str:
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + _ELLIPSIS


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return _clip(value.isoformat(sep=" "))
    if isinstance(value, (bytes, bytearray)):
        return _clip("0x" + bytes(value).hex())
    if isinstance(value, (list, dict)):
        return _clip(json.dumps(value, default=_json_default, ensure_ascii=False))
    return _clip(str(value))


def json_line(row: dict[str, Any]) -> str:
    """Encode one row as a JSON object on one line.

    Dates and times become ISO 8601 strings; decimals numbers, or strings
    where a JSON number would lose digits; binary values base64 strings;
    durations seconds; NaN and infinite floats ``null``.

    Parameters
    ----------
    row : dict
        Column name to Python value, as from ``RecordBatch.to_pylist``.

    Returns
    -------
    str
        The JSON text, without a newline.

    Examples
    --------
    >>> import datetime, decimal
    >>> json_line({"d": datetime.date(2024, 1, 2), "x": float("nan"), "p": decimal.Decimal("1.10")})
    '{"d": "2024-01-02", "x": null, "p": 1.1}'
    >>> json_line({"big": decimal.Decimal("12345678901234567890.5"), "n": decimal.Decimal("42")})
    '{"big": "12345678901234567890.5", "n": 42}'
    """
    return json.dumps(_finite(row), default=_json_default, ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _decimal(value: decimal.Decimal) -> int | float | str:
    """A JSON number when exact, else the digits as a string."""
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if decimal.Decimal(repr(as_float)) == value else str(value)


def _json_default(value: object) -> object:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Iterable):
        return list(value)
    return str(value)
