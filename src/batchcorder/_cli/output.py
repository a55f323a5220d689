"""Write statement results as an aligned table, CSV, JSON lines or Arrow IPC.

Every result is Arrow, rendered here once, by Arrow type, so a value prints
the same text whichever engine computed it (docs/how-to/cli.md lists the
rules): zoned timestamps in UTC, ISO 8601 times and durations without
trailing zeros, binary as hex, nested values as JSON, encodings decoded.
"""

from __future__ import annotations

import base64
import decimal
import io
import itertools
import json
from collections.abc import Callable
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ResultWriter", "format_table", "text_column"]


_MAX_CELL = 48
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})
_NANOS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DAY_NANOS = 86_400 * 1_000_000_000
_HOUR_NANOS, _MINUTE_NANOS = 3_600_000_000_000, 60_000_000_000
_BINARY = (pa.binary(), pa.large_binary(), pa.binary_view())
_NUMBERS = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
_CSV_PLAIN = (*_NUMBERS, pa.types.is_boolean, pa.types.is_date32, pa.types.is_null)
Leaf = Callable[[pa.Array], pa.Array]


# -- one Arrow shape per value -----------------------------------------------


def _map_leaves(array: pa.Array | pa.ChunkedArray, leaf: Leaf) -> pa.Array:
    """``array`` decoded (dictionary, run-end, extension) with ``leaf`` applied to every leaf."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _map_leaves(array.dictionary_decode(), leaf)
    if pa.types.is_run_end_encoded(kind):
        return _map_leaves(pc.run_end_decode(array), leaf)
    if isinstance(kind, pa.BaseExtensionType):
        return _map_leaves(array.storage, leaf)
    mask = array.is_null() if array.null_count else None
    if pa.types.is_struct(kind):
        children = [_map_leaves(array.field(i), leaf) for i in range(kind.num_fields)]
        return pa.StructArray.from_arrays(children, [f.name for f in kind], mask=mask)
    if pa.types.is_map(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        # offsets from 0 and children cut to them: a sliced array keeps its parents' offsets
        start, end = array.offsets[0].as_py(), array.offsets[-1].as_py()
        offsets = pc.subtract(array.offsets, pa.scalar(start, array.offsets.type))
        if pa.types.is_map(kind):
            keys = _map_leaves(array.keys.slice(start, end - start), leaf)
            items = _map_leaves(array.items.slice(start, end - start), leaf)
            return pa.MapArray.from_arrays(offsets, keys, items, mask=mask)
        values = _map_leaves(array.values.slice(start, end - start), leaf)
        return pa.LargeListArray.from_arrays(pc.cast(offsets, pa.int64()), values, mask=mask)
    if pa.types.is_list_view(kind) or pa.types.is_large_list_view(kind):
        return _map_leaves(_list_of_view(array), leaf)
    if pa.types.is_fixed_size_list(kind):
        return _map_leaves(array.cast(pa.large_list(kind.value_type)), leaf)
    return leaf(array)


def _list_of_view(array: pa.Array) -> pa.Array:
    """A list view as a large list (pyarrow 26 casts one wrongly, dropping the last values)."""
    columns = (array.offsets, array.sizes, array.is_valid())
    rows = zip(*(column.to_pylist() for column in columns), strict=True)
    spans = [(start, size) if valid else (0, 0) for start, size, valid in rows]
    indices = [index for start, size in spans for index in range(start, start + size)]
    offsets = pa.array([0, *itertools.accumulate(size for _, size in spans)], pa.int64())
    values = array.values.take(pa.array(indices, pa.int64()))
    mask = array.is_null() if array.null_count else None
    return pa.LargeListArray.from_arrays(offsets, values, mask=mask)


# -- leaves as text ------------------------------------------------------------


def iso_duration(months: int, nanoseconds: int) -> str:
    """An interval or a duration as an ISO 8601 duration, days of 24 h; one sign when all agree.

    Examples
    --------
    >>> iso_duration(0, 97_445_500_000_000), iso_duration(14, 0), iso_duration(0, 0)
    ('P1DT3H4M5.5S', 'P1Y2M', 'PT0S')
    >>> iso_duration(0, -1_500), iso_duration(1, -86_400_000_000_000)
    ('-PT0.0000015S', 'P1M-1D')
    """
    sign = "-" if min(months, nanoseconds) < 0 and max(months, nanoseconds) <= 0 else ""
    if sign:
        months, nanoseconds = -months, -nanoseconds
    minus = "-" if nanoseconds < 0 else ""
    years, months = int(months / 12), months - 12 * int(months / 12)
    days, rest = divmod(abs(nanoseconds), _DAY_NANOS)
    hours, rest = divmod(rest, _HOUR_NANOS)
    minutes, rest = divmod(rest, _MINUTE_NANOS)
    whole, fraction = divmod(rest, 1_000_000_000)
    seconds = f"{whole}.{fraction:09d}".rstrip("0").rstrip(".") if rest else ""
    date = f"{years}Y" * bool(years) + f"{months}M" * bool(months) + f"{minus}{days}D" * bool(days)
    parts = ((hours, "H"), (minutes, "M"), (seconds, "S"))
    time = "".join(f"{minus}{n}{unit}" for n, unit in parts if n) or ("" if date else "0S")
    return f"{sign}P{date}" + (f"T{time}" if time else "")


def _span_texts(array: pa.Array) -> pa.Array:
    """Durations and intervals as ISO 8601 (engines differ in how they split days and hours)."""
    if pa.types.is_duration(array.type):
        factor = _NANOS[array.type.unit]
        spans = [None if n is None else (0, n * factor) for n in array.cast(pa.int64()).to_pylist()]
    else:
        spans = [None if v is None else (v[0], v[1] * _DAY_NANOS + v[2]) for v in array.to_pylist()]
    return pa.array([None if s is None else iso_duration(*s) for s in spans], pa.string())


def _clock_texts(array: pa.Array) -> pa.Array:
    """Timestamps (zoned ones in UTC) and times as ISO 8601, no trailing zeros in the fraction."""
    kind = array.type
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        array = array.cast(pa.timestamp(kind.unit, "UTC"))
    text = pc.replace_substring(pc.cast(array, pa.string()), " ", "T", max_replacements=1)
    text = pc.replace_substring_regex(text, r"(\.\d*?[1-9])0+(Z?)$", r"\1\2")
    return pc.replace_substring_regex(text, r"\.0+(Z?)$", r"\1")


def _leaf(array: pa.Array, json: bool = False) -> pa.Array:
    """A leaf's values as text; with ``json``, as values JSON holds as they should show."""
    kind = array.type
    if pa.types.is_timestamp(kind) or pa.types.is_time(kind):
        return _clock_texts(array)
    if pa.types.is_duration(kind) or pa.types.is_interval(kind):
        return _span_texts(array)
    if kind in _BINARY or pa.types.is_fixed_size_binary(kind):
        encode = (lambda v: base64.b64encode(v).decode()) if json else (lambda v: "0x" + v.hex())
        return pa.array([None if v is None else encode(v) for v in array.to_pylist()], pa.string())
    if json and pa.types.is_floating(kind) and array.null_count < len(array):
        return pc.if_else(pc.is_finite(array), array, pa.scalar(None, kind))
    if json and not pa.types.is_date(kind):
        return array
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a union
        return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


def _json_default(value: object) -> object:
    if isinstance(value, decimal.Decimal):  # a number when exact, else its digits
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    return str(value)  # a union's member of another type: its text


def _json_values(array: pa.Array | pa.ChunkedArray) -> list[Any]:
    ready = _map_leaves(array, lambda leaf: _leaf(leaf, json=True))
    return [_maps_as_dicts(value, ready.type) for value in ready.to_pylist()]


def _maps_as_dicts(value: Any, kind: pa.DataType) -> Any:
    """``value`` of type ``kind`` with each map's pairs as a dict (pairs where a key repeats).

    pyarrow < 20 has no ``maps_as_pydicts``; this gives the same on every version.
    """
    if value is None:
        return None
    if pa.types.is_map(kind):
        pairs = [(key, _maps_as_dicts(item, kind.item_type)) for key, item in value]
        keys = [key for key, _ in pairs]
        # A JSON object needs keys JSON can name, each once (0.0 and -0.0 are one key).
        nameable = all(isinstance(key, (str, int, float)) for key in keys)
        return dict(pairs) if nameable and len(set(keys)) == len(keys) else pairs
    if pa.types.is_struct(kind):
        return {field.name: _maps_as_dicts(value[field.name], field.type) for field in kind}
    if isinstance(value, list) and hasattr(kind, "value_type"):
        return [_maps_as_dicts(item, kind.value_type) for item in value]
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def text_column(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Every value of ``array`` as its text; nulls stay null.

    Examples
    --------
    >>> import datetime
    >>> text_column(pa.array([1.5, None])).to_pylist(), text_column(pa.array([[1, 2]])).to_pylist()
    (['1.5', None], ['[1, 2]'])
    >>> berlin = pa.array([datetime.datetime(2024, 1, 1, 23)], pa.timestamp("us", "Europe/Berlin"))
    >>> text_column(berlin).to_pylist()
    ['2024-01-01T23:00:00Z']
    """
    kind = array.type
    if len(array) == 0:  # (an empty chunked union does not combine)
        return pa.array([], pa.string())
    if pa.types.is_dictionary(kind) or pa.types.is_run_end_encoded(kind):
        return text_column(_map_leaves(array, lambda leaf: leaf))
    if pa.types.is_nested(kind):
        values = _json_values(array)
        return pa.array([None if v is None else _dumps(v) for v in values], pa.string())
    return _map_leaves(array, _leaf)


# -- the formats ---------------------------------------------------------------


def _buffered(out: BinaryIO) -> BinaryIO:
    """``out``, or a buffer in front of a raw file (``PYTHONUNBUFFERED``).

    A raw ``write`` may write part of the bytes and say so in its return
    value, which pyarrow's writers do not look at; a buffered one raises.
    """
    if isinstance(out, io.RawIOBase) and hasattr(out, "fileno"):
        return io.BufferedWriter(io.FileIO(out.fileno(), "wb", closefd=False))
    return out


class ResultWriter:
    """Write results in format ``fmt``, one after the other, to the binary stream ``out``.

    ``max_rows`` (table only) are shown per result (0: all); the footer counts all.

    Examples
    --------
    >>> out = io.BytesIO()
    >>> writer = ResultWriter("json", out)
    >>> [writer.write(pa.table(columns).to_reader()) for columns in ({"n": [1, 2]}, {"s": ["a"]})]
    [2, 1]
    >>> print(out.getvalue().decode(), end="")
    {"n": 1}
    {"n": 2}
    <BLANKLINE>
    {"s": "a"}
    """

    def __init__(self, fmt: str, out: BinaryIO, max_rows: int = 100) -> None:
        self.write_result = getattr(self, f"_write_{fmt}")
        self.fmt, self.out, self.max_rows, self.results = fmt, _buffered(out), max_rows, 0

    def write(self, reader: pa.RecordBatchReader) -> int:
        """Write one result; return its row count."""
        if self.results and self.fmt != "arrow":
            self.out.write(b"\n")
        self.results += 1
        rows: int = self.write_result(reader)
        self.out.flush()
        return rows

    def _write_table(self, reader: pa.RecordBatchReader) -> int:
        shown, total = [], 0
        for batch in reader:
            if self.max_rows <= 0 or total < self.max_rows:
                shown.append(batch if self.max_rows <= 0 else batch[: self.max_rows - total])
            total += batch.num_rows
        table = pa.Table.from_batches(shown, schema=reader.schema)
        self.out.write(format_table(table, total_rows=total).encode())
        return total

    def _write_csv(self, reader: pa.RecordBatchReader) -> int:
        import pyarrow.csv as pa_csv

        total, writer = 0, None
        try:  # every column as the CSV writer takes it: the engine's errors pass through
            for batch in reader:
                texts = pa.record_batch([_csv_column(c) for c in batch.columns], batch.schema.names)
                writer = writer or pa_csv.CSVWriter(self.out, texts.schema)
                writer.write_batch(texts)
                total += batch.num_rows
            if writer is None:  # no batch: the header alone
                header = {name: pa.array([], pa.string()) for name in reader.schema.names}
                pa_csv.write_csv(pa.table(header), self.out)
        finally:
            if writer is not None:
                writer.close()
        return total

    def _write_json(self, reader: pa.RecordBatchReader) -> int:
        total = 0
        for batch in reader:
            columns = [_json_values(column) for column in batch.columns]
            for row in zip(*columns, strict=True) if columns else [()] * batch.num_rows:
                line = _dumps(dict(zip(batch.schema.names, row, strict=True))) + "\n"
                self.out.write(line.encode())
            total += batch.num_rows
        return total

    def _write_arrow(self, reader: pa.RecordBatchReader) -> int:
        total = 0
        with pa.ipc.new_stream(self.out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                total += batch.num_rows
        return total


def _csv_column(array: pa.Array) -> pa.Array:
    """Numbers, booleans and dates as pyarrow's CSV writer writes them; the rest as text."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _csv_column(array.dictionary_decode())
    if any(check(kind) for check in _CSV_PLAIN):
        return array
    return text_column(array)


def format_table(table: pa.Table, total_rows: int | None = None, footer: bool = True) -> str:
    """``table`` as aligned text: numbers right-aligned, NULL, long cells cut with ``…``.

    Examples
    --------
    >>> print(format_table(pa.table({"city": ["Oslo", None], "temp": [-3.5, 21.0]})), end="")
    city  temp
    ----  ----
    Oslo  -3.5
    NULL    21
    (2 rows)
    >>> print(format_table(pa.table({"n": [1]}), total_rows=1000).splitlines()[-1])
    (1,000 rows, first 1 shown; --max-rows 0 shows all)
    """
    columns = [
        [_clip(name), *("NULL" if t is None else _clip(t) for t in text_column(column).to_pylist())]
        for name, column in zip(table.column_names, table.columns, strict=True)
    ]
    right = [any(check(column.type) for check in _NUMBERS) for column in table.columns]
    widths = [max(map(len, column)) for column in columns]
    lines = [
        "  ".join(
            c[row].rjust(w) if r and row else c[row].ljust(w)
            for c, w, r in zip(columns, widths, right, strict=True)
        ).rstrip()
        for row in range(table.num_rows + 1 if columns else 0)
    ]
    lines[1:1] = ["  ".join("-" * w for w in widths)] if lines else []
    if footer:
        total = table.num_rows if total_rows is None else total_rows
        more = f", first {table.num_rows:,} shown; --max-rows 0 shows all"
        lines.append(f"({total:,} row{'s' * (total != 1)}{more * (total > table.num_rows)})")
    return "".join(line + "\n" for line in lines)


def _clip(text: str) -> str:
    text = text.translate(_ESCAPES)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"
