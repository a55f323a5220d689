"""One text for each value, whichever engine computed it.

Engines hand back the same answer in different Arrow types (DuckDB an
interval, Polars and DataFusion a duration) and Python turns some of them
into objects whose ``str`` differs (``MonthDayNano(...)``, pandas'
``Timedelta``). The rules here work on Arrow types, so a value prints the
same from every engine:

- scalars (numbers, booleans, decimals, dates, times, timestamps, strings)
  print as pyarrow's own cast to string, which is also what
  ``pyarrow.csv`` writes;
- durations and intervals as ISO 8601 durations (``PT5S``, ``P1DT3H4M5S``,
  ``P1Y2M``, ``-PT0.5S``);
- binary values as ``0x`` and hex digits;
- nested values (lists, structs, maps) as JSON text, by :func:`json_ready`'s
  rules.

:func:`json_ready` prepares values for JSON: timestamps, dates and times as
ISO 8601 strings, durations and intervals as above, binary as base64, NaN
and infinities as null, maps as objects.
"""

from __future__ import annotations

import base64
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["iso_duration", "json_ready", "json_rows", "json_text", "text_column"]

_NANOS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DAY_NANOS = 86_400 * 1_000_000_000
_UUID = "arrow.uuid"


def iso_duration(months: int = 0, days: int = 0, nanoseconds: int = 0) -> str:
    """Format an interval or a duration as an ISO 8601 duration.

    When every part that is not zero is negative, the sign goes in front
    (``-P1D``); parts of mixed signs keep their own (``P1M-1D``).

    Parameters
    ----------
    months, days, nanoseconds : int
        The parts, as in Arrow's ``month_day_nano_interval``.

    Returns
    -------
    str
        For example ``'PT5S'``, ``'P1DT3H4M5.5S'`` or ``'P1Y2M'``.

    Examples
    --------
    >>> iso_duration(nanoseconds=5_000_000_000)
    'PT5S'
    >>> iso_duration(days=1, nanoseconds=11_045_500_000_000)
    'P1DT3H4M5.5S'
    >>> iso_duration(months=14)
    'P1Y2M'
    >>> iso_duration(nanoseconds=-1_500)
    '-PT0.0000015S'
    >>> iso_duration(months=1, days=-1), iso_duration()
    ('P1M-1D', 'PT0S')
    """
    parts = (months, days, nanoseconds)
    sign = ""
    if any(parts) and all(part <= 0 for part in parts):
        sign, months, days, nanoseconds = "-", -months, -days, -nanoseconds
    years, months = int(months / 12), months - 12 * int(months / 12)
    date = "".join(
        f"{value}{unit}" for value, unit in ((years, "Y"), (months, "M"), (days, "D")) if value
    )
    negative = nanoseconds < 0
    hours, rest = divmod(abs(nanoseconds), 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds, fraction = divmod(rest, 1_000_000_000)
    second_text = str(seconds) + (f".{fraction:09d}".rstrip("0") if fraction else "")
    time = "".join(
        f"{'-' if negative else ''}{value}{unit}"
        for value, unit in ((hours, "H"), (minutes, "M"), (second_text, "S"))
        if value not in (0, "0")
    )
    if not date and not time:
        time = "0S"
    return f"{sign}P{date}{'T' + time if time else ''}"


def _duration_texts(array: pa.Array) -> list[str | None]:
    factor = _NANOS[array.type.unit]
    texts: list[str | None] = []
    for value in array.cast(pa.int64()).to_pylist():
        if value is None:
            texts.append(None)
        else:
            days, rest = divmod(abs(value) * factor, _DAY_NANOS)
            sign = -1 if value < 0 else 1
            texts.append(iso_duration(days=sign * days, nanoseconds=sign * rest))
    return texts


def _interval_texts(array: pa.Array) -> list[str | None]:
    return [
        None if value is None else iso_duration(value.months, value.days, value.nanoseconds)
        for value in array.to_pylist()
    ]


def _is_interval(kind: pa.DataType) -> bool:
    return bool(pa.types.is_interval(kind))


def _is_binary(kind: pa.DataType) -> bool:
    return (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or getattr(pa.types, "is_binary_view", lambda _: False)(kind)
    )


def _is_nested(kind: pa.DataType) -> bool:
    return pa.types.is_nested(kind) and not pa.types.is_dictionary(kind)


def text_column(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Render every value of ``array`` as text; nulls stay null.

    Parameters
    ----------
    array : pyarrow.Array or pyarrow.ChunkedArray
        A column of any type.

    Returns
    -------
    pyarrow.Array
        Strings, one per value.

    Examples
    --------
    >>> import datetime
    >>> text_column(pa.array([1.5, None, 3.0])).to_pylist()
    ['1.5', None, '3']
    >>> text_column(pa.array([datetime.timedelta(seconds=5)])).to_pylist()
    ['PT5S']
    >>> text_column(pa.array([[1, 2], None])).to_pylist()
    ['[1, 2]', None]
    >>> text_column(pa.array([b"\\x00\\xff"])).to_pylist()
    ['0x00ff']
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    plain = _unwrapped(array)
    if plain is not None:
        return text_column(plain)
    return _plain_texts(array)


def _unwrapped(array: pa.Array) -> pa.Array | None:
    """The values of a dictionary, run-end encoded or extension array; None for another.

    UUIDs keep their extension type: they print as UUIDs, not as their bytes.
    """
    kind = array.type
    if pa.types.is_dictionary(kind):
        return array.dictionary_decode()
    if pa.types.is_run_end_encoded(kind):
        return pc.run_end_decode(array)
    if isinstance(kind, pa.BaseExtensionType) and kind.extension_name != _UUID:
        return array.storage
    return None


def _plain_texts(array: pa.Array) -> pa.Array:
    """:func:`text_column` of an array that is neither encoded nor of an extension but UUID."""
    kind = array.type
    if isinstance(kind, pa.BaseExtensionType):  # a UUID
        values = array.storage.to_pylist()
        return pa.array(
            [None if v is None else str(uuid.UUID(bytes=v)) for v in values], pa.string()
        )
    if pa.types.is_duration(kind):
        return pa.array(_duration_texts(array), pa.string())
    if _is_interval(kind):
        return pa.array(_interval_texts(array), pa.string())
    if _is_binary(kind):
        values = array.to_pylist()
        return pa.array([None if v is None else "0x" + v.hex() for v in values], pa.string())
    if _is_nested(kind):
        return pa.array(json_text(array), pa.string())
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


def _rfc3339(array: pa.Array) -> pa.Array:
    """Timestamps as ISO 8601 / RFC 3339 text: ``T`` between date and time, ``+01:00`` offsets."""
    text = pc.replace_substring(pc.cast(array, pa.string()), " ", "T", max_replacements=1)
    return pc.replace_substring_regex(text, r"([+-]\d\d)(\d\d)$", r"\1:\2")


def _json_leaf(array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_timestamp(kind):
        return _rfc3339(array)
    if pa.types.is_date(kind) or pa.types.is_time(kind):
        return pc.cast(array, pa.string())
    if pa.types.is_floating(kind) and array.null_count < len(array):
        return pc.if_else(pc.is_finite(array), array, pa.scalar(None, kind))
    if pa.types.is_duration(kind) or _is_interval(kind):
        return text_column(array)
    if _is_binary(kind):
        values = array.to_pylist()
        return pa.array(
            [None if v is None else base64.b64encode(v).decode("ascii") for v in values],
            pa.string(),
        )
    return array


def _map_leaves(array: pa.Array, leaf: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply ``leaf`` to every non-nested array inside ``array``, keeping its shape."""
    plain = _unwrapped(array)
    if plain is not None:
        return _map_leaves(plain, leaf)
    kind = array.type
    if isinstance(kind, pa.BaseExtensionType):  # a UUID
        return text_column(array)
    mask = array.is_null() if array.null_count else None
    if pa.types.is_struct(kind):
        children = [_map_leaves(array.field(i), leaf) for i in range(kind.num_fields)]
        names = [kind.field(i).name for i in range(kind.num_fields)]
        return pa.StructArray.from_arrays(children, names=names, mask=mask)
    if pa.types.is_map(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        # offsets from 0 and children cut to them: Arrow rebuilds no sliced array with nulls
        offsets = array.offsets
        start = offsets[0].as_py()
        length = offsets[-1].as_py() - start
        offsets = pc.subtract(offsets, pa.scalar(start, offsets.type))
        if pa.types.is_map(kind):
            keys = _map_leaves(array.keys.slice(start, length), leaf)
            items = _map_leaves(array.items.slice(start, length), leaf)
            return pa.MapArray.from_arrays(offsets, keys, items, mask=mask)
        values = _map_leaves(array.values.slice(start, length), leaf)
        return type(array).from_arrays(offsets, values, mask=mask)
    if pa.types.is_nested(kind) and not pa.types.is_union(kind):
        # fixed-size lists and list views: as plain lists
        return _map_leaves(array.cast(pa.large_list(kind.value_type)), leaf)
    return leaf(array)


def json_ready(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Convert ``array`` so that its Python values are what JSON should show.

    Examples
    --------
    >>> import datetime
    >>> ts = pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("s", "UTC"))
    >>> json_ready(ts).to_pylist()
    ['2024-01-02T03:04:05Z']
    >>> json_ready(pa.array([{"b": b"hi", "f": float("nan")}])).to_pylist()
    [{'b': 'aGk=', 'f': None}]
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return _map_leaves(array, _json_leaf)


def _python_values(array: pa.Array) -> list[Any]:
    """``array``'s Python values after :func:`json_ready`, maps as dicts where keys allow."""
    ready = json_ready(array)
    try:
        try:
            return ready.to_pylist(maps_as_pydicts="strict")
        except TypeError:  # pyarrow < 19 gives maps as lists of (key, value) pairs
            return [_maps_as_dicts(value, ready.type) for value in ready.to_pylist()]
    except KeyError:  # a map with a key twice: keep its (key, value) pairs
        return ready.to_pylist()


def _maps_as_dicts(value: Any, data_type: pa.DataType) -> Any:
    """``value`` of ``data_type`` with its maps as dicts (raises KeyError on a repeated key)."""
    if value is None:
        return None
    if pa.types.is_map(data_type):
        pairs = [
            (_maps_as_dicts(key, data_type.key_type), _maps_as_dicts(item, data_type.item_type))
            for key, item in value
        ]
        as_dict = dict(pairs)
        if len(as_dict) != len(pairs):
            raise KeyError("a map holds a key twice")
        return as_dict
    if pa.types.is_struct(data_type):
        return {field.name: _maps_as_dicts(value[field.name], field.type) for field in data_type}
    if (
        pa.types.is_list(data_type)
        or pa.types.is_large_list(data_type)
        or pa.types.is_fixed_size_list(data_type)
    ):
        return [_maps_as_dicts(item, data_type.value_type) for item in value]
    return value


def _decimal(value: decimal.Decimal) -> int | float | str:
    """A JSON number when exact, else the digits as a string."""
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if decimal.Decimal(repr(as_float)) == value else str(value)


def _json_default(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)  # a value of an exotic type (a union member): its text


def dumps(value: Any) -> str:
    """One Python value from :func:`json_ready` as JSON text, on one line."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def json_text(array: pa.Array) -> list[str | None]:
    """Every value of ``array`` as JSON text (None for nulls).

    Examples
    --------
    >>> json_text(pa.array([{"l": [1.5, None], "n": 1}, None]))
    ['{"l": [1.5, null], "n": 1}', None]
    >>> json_text(pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())))
    ['{"k": 1}']
    """
    return [None if value is None else dumps(value) for value in _python_values(array)]


def json_rows(batch: pa.RecordBatch) -> list[str]:
    """Every row of ``batch`` as a JSON object on one line.

    Examples
    --------
    >>> import datetime, decimal
    >>> batch = pa.record_batch(
    ...     {"d": [datetime.date(2024, 1, 2)], "x": [float("nan")], "p": [decimal.Decimal("1.10")]}
    ... )
    >>> json_rows(batch)
    ['{"d": "2024-01-02", "x": null, "p": 1.1}']
    """
    names = batch.schema.names
    columns = [_python_values(column) for column in batch.columns]
    rows = zip(*columns, strict=True) if columns else [()] * batch.num_rows
    return [dumps(dict(zip(names, values, strict=True))) for values in rows]
