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

from batchcorder._flight.auth import check_secret
from batchcorder._flight.errors import InvalidArgument, quoted

__all__ = [
    "MAX_DESCRIPTOR_BYTES",
    "MAX_TICKET_BYTES",
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
    "ticket_payload",
    "wire_schema",
]

_TICKET_KEYS = frozenset({"columns", "start", "stop", "cache"})
_DESCRIPTOR_KEYS = frozenset({"columns"})

#: The largest descriptor (command or path) a server reads: a projection of
#: hundreds of columns fits; anything larger is refused before it is decoded.
MAX_DESCRIPTOR_BYTES = 16 * 1024

#: The largest ticket a server reads: a descriptor's projection, its range
#: and the server's identity.
MAX_TICKET_BYTES = MAX_DESCRIPTOR_BYTES + 256


class TicketError(InvalidArgument, ValueError):
    """A ticket or descriptor the server cannot use; its message goes to the client."""


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
    return check_secret(token, "token")


# -- tickets and descriptors -------------------------------------------------


def ticket_payload(
    columns: Sequence[str] | None, start: int, stop: int | None, cache: str | None = None
) -> dict[str, Any]:
    """The JSON object of a ticket; keys at their default are left out.

    Examples
    --------
    >>> ticket_payload(None, 0, None)
    {}
    >>> ticket_payload(["x"], 2, 4)
    {'columns': ['x'], 'start': 2, 'stop': 4}
    >>> ticket_payload(None, 0, 1, cache="5f2a")
    {'stop': 1, 'cache': '5f2a'}
    """
    payload: dict[str, Any] = {}
    if columns is not None:
        payload["columns"] = column_list(columns, "columns")
    if batch_index(start, "start"):
        payload["start"] = start
    if stop is not None:
        payload["stop"] = batch_index(stop, "stop")
        if stop < start:
            raise ValueError(f"stop must be >= start, got start={start} and stop={stop}")
    if cache is not None:
        payload["cache"] = cache
    return payload


def encode_ticket(
    columns: Sequence[str] | None, start: int, stop: int | None, cache: str | None = None
) -> flight.Ticket:
    """The ticket of a ``do_get``: its bytes are :func:`ticket_payload` as JSON.

    Examples
    --------
    >>> encode_ticket(None, 3, None).ticket
    b'{"start": 3}'
    """
    return flight.Ticket(json.dumps(ticket_payload(columns, start, stop, cache)).encode())


def _parse_json_object(data: bytes, what: str, limit: int) -> dict[str, Any]:
    # The size first: nothing larger than a few KiB is decoded.
    if len(data) > limit:
        raise TicketError(
            f"the {what} is {len(data):,} bytes, more than the {limit:,} this server reads"
        )
    try:
        payload = json.loads(data.decode() or "{}")
    except (UnicodeDecodeError, ValueError):
        raise TicketError(f"the {what} is not JSON: {quoted(data)}") from None
    if not isinstance(payload, dict):
        raise TicketError(f"the {what} must be a JSON object, got {quoted(data)}")
    return payload


def _refuse_unknown_keys(
    payload: dict[str, Any], known: frozenset[str], what: str, hint: str
) -> None:
    unknown = sorted(set(payload) - known)
    if unknown:
        shown = ", ".join(quoted(key) for key in unknown[:3])
        raise TicketError(f"unknown {what} keys {shown}: {hint}")


def parse_ticket(data: bytes, cache: str | None = None) -> tuple[int, int | None, list[str] | None]:
    """``(start, stop, columns)`` of a ticket; :class:`TicketError` if it is malformed.

    Parameters
    ----------
    data : bytes
        The ticket.
    cache : str, optional
        The identity of the cache served: a ticket that names another is refused.

    Examples
    --------
    >>> parse_ticket(b'{"columns": ["x"], "stop": 2}')
    (0, 2, ['x'])
    >>> parse_ticket(b'{"start": 3, "stop": 2}')
    Traceback (most recent call last):
    ...
    batchcorder._flight.wire.TicketError: ticket 'stop' (2) is before its 'start' (3)
    """
    payload = _parse_json_object(data, "ticket", MAX_TICKET_BYTES)
    _refuse_unknown_keys(
        payload, _TICKET_KEYS, "ticket", "a ticket may hold 'columns', 'start' and 'stop'"
    )
    issued_by = payload.get("cache")
    if issued_by is not None and issued_by != cache:
        raise TicketError(
            "this ticket was issued for another cache or another run of the server: "
            "ask this server for tickets (get_flight_info)"
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
        raise TicketError(_short(error)) from None
    if stop is not None and stop < start:
        raise TicketError(f"ticket 'stop' ({stop}) is before its 'start' ({start})")
    return start, stop, columns


def _short(error: BaseException) -> str:
    text = str(error)
    return text if len(text) <= 120 else text[:119] + "…"


def _path_parts(descriptor: flight.FlightDescriptor) -> list[str]:
    raw = [part if isinstance(part, bytes) else str(part).encode() for part in descriptor.path]
    if sum(len(part) for part in raw) > MAX_DESCRIPTOR_BYTES:
        raise TicketError(f"the descriptor's path is longer than {MAX_DESCRIPTOR_BYTES:,} bytes")
    try:
        return [part.decode() for part in raw]
    except UnicodeDecodeError:
        shown = ", ".join(quoted(part) for part in raw[:3])
        raise TicketError(f"the descriptor's path is not UTF-8 text: {shown}") from None


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
        path = _path_parts(descriptor)
        if path != [name]:
            shown = ", ".join(quoted(part) for part in path[:3])
            raise TicketError(f"no flight at path [{shown}]: this server serves [{name!r}]")
        return None
    payload = _parse_json_object(descriptor.command, "descriptor command", MAX_DESCRIPTOR_BYTES)
    _refuse_unknown_keys(payload, _DESCRIPTOR_KEYS, "descriptor", "a command may hold 'columns'")
    columns = payload.get("columns")
    if columns is None:
        return None
    try:
        return column_list(columns, "descriptor 'columns'")
    except TypeError as error:
        raise TicketError(_short(error)) from None


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
            listed = schema.names if len(schema.names) <= 20 else [*schema.names[:20], "..."]
            raise TicketError(f"unknown column {quoted(name)}; the columns are {listed}")
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
