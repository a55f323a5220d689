"""Write statement results as an aligned table, CSV, JSON lines or Arrow IPC.

Several results go to one output in order. The text formats (``table``,
``csv``, ``json``) put one empty line between two results; ``arrow`` writes
each result as its own complete Arrow IPC stream, back to back, which
``pyarrow.ipc.open_stream`` reads one after the other from the same file.
Values print by the rules of :mod:`batchcorder._cli.render`, the same for
every engine; CSV is pyarrow's CSV writer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv

from batchcorder._cli.errors import CLIError, one_line
from batchcorder._cli.render import json_rows, text_column

__all__ = ["FORMATS", "ResultWriter", "format_table"]

#: The values of ``--format``.
FORMATS = ("table", "csv", "json", "arrow")

_MAX_CELL = 48
_ELLIPSIS = "…"
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _buffered(out: BinaryIO) -> BinaryIO:
    """``out``, or a buffer in front of it if it is raw (``PYTHONUNBUFFERED``).

    A raw file's ``write`` may write only part of the bytes (a pipe whose
    reader went away, a signal) and say so in its return value, which
    pyarrow's writers do not look at; a buffered writer writes everything or
    raises.
    """
    if isinstance(out, io.RawIOBase) and hasattr(out, "fileno"):
        return io.BufferedWriter(io.FileIO(out.fileno(), "wb", closefd=False))
    return out


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
        self.out = _buffered(out)
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
        total = 0
        for batch in reader:
            if self.max_rows <= 0 or total < self.max_rows:
                take = batch.num_rows if self.max_rows <= 0 else self.max_rows - total
                shown.append(batch.slice(0, take))
            total += batch.num_rows
        table = pa.Table.from_batches(shown, schema=reader.schema)
        self.out.write(format_table(table, total_rows=total).encode())
        return total

    def _write_csv(self, reader: pa.RecordBatchReader) -> int:
        total = 0
        texts = [i for i, field in enumerate(reader.schema) if not _csv_writes(field.type)]
        schema = reader.schema
        for i in texts:
            schema = schema.set(i, pa.field(schema.field(i).name, pa.string()))
        with _format_errors("csv"):
            writer = pa_csv.CSVWriter(self.out, schema)
        with writer:
            for batch in reader:  # the engine's errors pass through as they are
                columns = list(batch.columns)
                for i in texts:
                    columns[i] = text_column(columns[i])
                with _format_errors("csv"):
                    writer.write_batch(pa.record_batch(columns, schema=schema))
                total += batch.num_rows
        return total

    def _write_json(self, reader: pa.RecordBatchReader) -> int:
        total = 0
        for batch in reader:
            lines = json_rows(batch)
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


def _csv_writes(kind: pa.DataType) -> bool:
    """Whether pyarrow's CSV writer writes ``kind`` as the other formats print it.

    Others (durations, intervals, binary, nested, string views, extensions)
    go through :func:`~batchcorder._cli.render.text_column` first.
    """
    if pa.types.is_dictionary(kind):
        return _csv_writes(kind.value_type)
    return any(
        check(kind)
        for check in (
            pa.types.is_null,
            pa.types.is_boolean,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_decimal,
            pa.types.is_date,
            pa.types.is_time,
            pa.types.is_timestamp,
            pa.types.is_string,
            pa.types.is_large_string,
        )
    ) and not isinstance(kind, pa.BaseExtensionType)


@contextmanager
def _format_errors(fmt: str) -> Iterator[None]:
    """Turn Arrow's complaint about a value the format cannot hold into CLIError."""
    try:
        yield
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid) as error:
        raise CLIError(f"cannot write the result as {fmt}: {one_line(error)}") from error


def format_table(table: pa.Table, total_rows: int | None = None, footer: bool = True) -> str:
    """Render a table as aligned text with a row-count footer.

    Numbers are right-aligned, nulls print as ``NULL``, line breaks and
    tabs as ``\\n``, ``\\r`` and ``\\t``, and cells longer than 48 characters
    are cut with ``…``.

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
    NULL    21
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
        cells = [
            "NULL" if text is None else _clip(text) for text in text_column(column).to_pylist()
        ]
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
    text = text.translate(_ESCAPES)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + _ELLIPSIS
