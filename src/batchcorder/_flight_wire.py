"""What :mod:`batchcorder.flight` puts on the wire: tickets, schemas and errors.

Tickets and descriptors are JSON objects (see :mod:`batchcorder.flight`);
this module writes and parses them, gives the schema a stream is sent with,
and turns a server-side error into the one a client receives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pyarrow import flight

__all__ = [
    "TicketError",
    "batch_index",
    "batch_ranges",
    "check_token",
    "column_list",
    "descriptor_columns",
    "encode_ticket",
    "flight_info",
    "parse_ticket",
    "projected",
    "remote_error",
    "ticket_payload",
    "wire_schema",
]

_TICKET_KEYS = frozenset({"columns", "start", "stop"})
_DESCRIPTOR_KEYS = frozenset({"columns"})

#: How much of a malformed ticket an error message quotes.
_QUOTED_BYTES = 80

#: How pyarrow appends a Python traceback to the message of an error that
#: crossed the Arrow C stream interface.
_TRACEBACK_DETAIL = ". Detail: Python exception: Traceback"


class TicketError(ValueError):
    """A ticket or descriptor that does not parse; its message goes to the client."""


# -- checking arguments ------------------------------------------------------


def column_list(columns: object, what: str) -> list[str]:
    """``columns`` as a list of names; :class:`TypeError` naming ``what`` otherwise.

    Examples
    --------
    >>> column_list(("x", "y"), "columns")
    ['x', 'y']
    """
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
        raise TypeError(f"{what} must be a list of column names, got {columns!r}")
    names = list(columns)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what} must be a list of column names, got {name!r} in it")
    return names


def batch_index(value: object, what: str) -> int:
    """``value`` as a batch index (an int >= 0); TypeError or ValueError naming ``what``.

    Examples
    --------
    >>> batch_index(3, "start")
    3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


def check_token(token: object) -> str:
    """``token`` if it can travel in an ``authorization`` header.

    Examples
    --------
    >>> check_token("s3cret")
    's3cret'
    """
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    if not token or not token.isprintable() or token != token.strip():
        raise ValueError("token must be non-empty printable text without surrounding spaces")
    return token


# -- tickets and descriptors -------------------------------------------------


def ticket_payload(columns: Sequence[str] | None, start: int, stop: int | None) -> dict[str, Any]:
    """The JSON object of a ticket; keys at their default are left out.

    Examples
    --------
    >>> ticket_payload(None, 0, None)
    {}
    >>> ticket_payload(["x"], 2, 4)
    {'columns': ['x'], 'start': 2, 'stop': 4}
    """
    payload: dict[str, Any] = {}
    if columns is not None:
        payload["columns"] = column_list(columns, "columns")
    if batch_index(start, "start"):
        payload["start"] = start
    if stop is not None:
        payload["stop"] = batch_index(stop, "stop")
    return payload


def encode_ticket(columns: Sequence[str] | None, start: int, stop: int | None) -> flight.Ticket:
    """The ticket of a ``do_get``: its bytes are :func:`ticket_payload` as JSON.

    Examples
    --------
    >>> encode_ticket(None, 3, None).ticket
    b'{"start": 3}'
    """
    return flight.Ticket(json.dumps(ticket_payload(columns, start, stop)).encode())


def _parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        payload = json.loads(data.decode() or "{}")
    except (UnicodeDecodeError, ValueError):
        raise TicketError(f"the {what} is not JSON: {data[:_QUOTED_BYTES]!r}") from None
    if not isinstance(payload, dict):
        raise TicketError(f"the {what} must be a JSON object, got {data[:_QUOTED_BYTES]!r}")
    return payload


def _refuse_unknown_keys(
    payload: dict[str, Any], known: frozenset[str], what: str, hint: str
) -> None:
    unknown = sorted(set(payload) - known)
    if unknown:
        raise TicketError(f"unknown {what} keys {unknown}: {hint}")


def parse_ticket(data: bytes) -> tuple[int, int | None, list[str] | None]:
    """``(start, stop, columns)`` of a ticket; :class:`TicketError` if it is malformed.

    Examples
    --------
    >>> parse_ticket(b'{"columns": ["x"], "stop": 2}')
    (0, 2, ['x'])
    """
    payload = _parse_json_object(data, "ticket")
    _refuse_unknown_keys(
        payload, _TICKET_KEYS, "ticket", "a ticket may hold 'columns', 'start' and 'stop'"
    )
    try:
        start = batch_index(payload.get("start", 0), "ticket 'start'")
        stop = payload.get("stop")
        if stop is not None:
            stop = batch_index(stop, "ticket 'stop'")
        columns = payload.get("columns")
        if columns is not None:
            columns = column_list(columns, "ticket 'columns'")
    except (TypeError, ValueError) as error:
        raise TicketError(str(error)) from None
    return start, stop, columns


def descriptor_columns(descriptor: flight.FlightDescriptor, name: str) -> list[str] | None:
    """The projection a descriptor asks for (``None``: every column) of the flight ``name``.

    Examples
    --------
    >>> descriptor_columns(flight.FlightDescriptor.for_command(b'{"columns": ["y"]}'), "cache")
    ['y']
    >>> descriptor_columns(flight.FlightDescriptor.for_path("cache"), "cache") is None
    True
    """
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        path = [part.decode() if isinstance(part, bytes) else part for part in descriptor.path]
        if path != [name]:
            raise TicketError(f"no flight at path {path}: this server serves [{name!r}]")
        return None
    payload = _parse_json_object(descriptor.command, "descriptor command")
    _refuse_unknown_keys(payload, _DESCRIPTOR_KEYS, "descriptor", "a command may hold 'columns'")
    columns = payload.get("columns")
    if columns is None:
        return None
    try:
        return column_list(columns, "descriptor 'columns'")
    except TypeError as error:
        raise TicketError(str(error)) from None


# -- schemas -----------------------------------------------------------------


def projected(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    """``schema`` reduced to ``columns``, in their order; :class:`TicketError` for an unknown one.

    Examples
    --------
    >>> projected(pa.schema([("x", pa.int8()), ("y", pa.string())]), ["y"])
    y: string
    """
    if columns is None:
        return schema
    names = set(schema.names)
    for name in columns:
        if name not in names:
            raise TicketError(f"unknown column {name!r}; the columns are {schema.names}")
    return pa.schema([schema.field(name) for name in columns], metadata=schema.metadata)


def _decoded_type(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every dictionary-encoded type, at any depth, replaced by its values' type."""
    if pa.types.is_dictionary(kind):
        return _decoded_type(kind.value_type)
    if pa.types.is_struct(kind):
        return pa.struct([_decoded_field(kind.field(index)) for index in range(kind.num_fields)])
    if pa.types.is_fixed_size_list(kind):
        return pa.list_(_decoded_field(kind.value_field), kind.list_size)
    if pa.types.is_large_list(kind):
        return pa.large_list(_decoded_field(kind.value_field))
    if pa.types.is_list(kind):
        return pa.list_(_decoded_field(kind.value_field))
    return kind


def _decoded_field(field: pa.Field) -> pa.Field:
    return field.with_type(_decoded_type(field.type))


def wire_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a stream is sent with: dictionary-encoded fields decoded.

    A Flight stream written from Python cannot carry dictionaries that change
    between batches: pyarrow's ``GeneratorStream`` sends none, and pyarrow
    18's ``RecordBatchStream`` sends the first batch's dictionary for every
    batch, which gives wrong values. Decoded columns hold the same values.

    Examples
    --------
    >>> wire_schema(pa.schema([("k", pa.dictionary(pa.int8(), pa.string())), ("v", pa.int64())]))
    k: string
    v: int64
    """
    return pa.schema([_decoded_field(field) for field in schema], metadata=schema.metadata)


# -- describing the flight ---------------------------------------------------


def batch_ranges(batches: int, parts: int) -> list[tuple[int, int]]:
    """Split ``range(batches)`` into at most ``parts`` contiguous, near-equal ranges.

    Examples
    --------
    >>> batch_ranges(10, 4)
    [(0, 3), (3, 6), (6, 8), (8, 10)]
    >>> batch_ranges(2, 4)
    [(0, 1), (1, 2)]
    """
    parts = max(1, min(parts, batches))
    size, extra = divmod(batches, parts)
    ranges = []
    start = 0
    for part in range(parts):
        stop = start + size + (1 if part < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def flight_info(**arguments: Any) -> flight.FlightInfo:
    """A ``FlightInfo`` whose endpoints are marked ordered where pyarrow can say so."""
    try:
        return flight.FlightInfo(**arguments, ordered=True)
    except TypeError:  # pyarrow < 19 has no ``ordered``; endpoints are in order anyway
        return flight.FlightInfo(**arguments)


# -- errors ------------------------------------------------------------------


def remote_error(error: BaseException) -> flight.FlightError:
    """The error a client receives for ``error``: its type and message, no traceback.

    (A plain Python exception would reach the client with the server's traceback
    in its message; ``FlightCancelledError`` would make pyarrow clients raise
    ``KeyboardInterrupt``.)

    Examples
    --------
    >>> str(remote_error(RuntimeError("upstream broke"))).split(". Detail")[0]
    'RuntimeError: upstream broke'
    """
    if isinstance(error, (flight.FlightUnauthenticatedError, flight.FlightUnavailableError)):
        return error
    if isinstance(error, TicketError):
        return flight.FlightServerError(str(error))
    message = str(error).split(_TRACEBACK_DETAIL, 1)[0]
    return flight.FlightServerError(f"{type(error).__name__}: {message}")
