"""Serve a :class:`~batchcorder.StreamCache` over Arrow Flight.

:func:`serve` starts an Arrow Flight server over a cache, live or finished,
on a free port of the loopback interface unless told otherwise. Every
``do_get`` replays the cache from batch 0 with its own reader, exactly like a
local reader: the upstream is still pulled once, lazily, however many remote
clients read it, and a client that connects while the upstream is being
pulled gets every batch as it arrives.

Any Flight client reads it::

    import pyarrow.flight
    client = pyarrow.flight.connect(server.location)
    table = client.do_get(batchcorder.flight.ticket()).read_all()

Importing ``batchcorder`` does not import this module (nor ``pyarrow.flight``).

Tickets and descriptors are JSON, so clients in any language can write them:

- a ticket is a JSON object with the optional keys ``"columns"`` (a list of
  column names: the projection), ``"start"`` and ``"stop"`` (a range of batch
  indices, ``stop`` excluded); ``{}`` is the whole stream;
- the flight is described by the path descriptor ``[name]`` (``"cache"`` by
  default), or by a command descriptor holding ``{"columns": [...]}`` for a
  projection.

Examples
--------
>>> import pyarrow as pa
>>> import pyarrow.flight
>>> from batchcorder import StreamCache
>>> from batchcorder.flight import serve, ticket
>>> cache = StreamCache(pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]}))
>>> with serve(cache) as server:
...     client = pyarrow.flight.connect(server.location)
...     client.do_get(ticket(columns=["y"])).read_all().to_pydict()
{'y': ['a', 'b', 'c']}
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from pyarrow import flight

from batchcorder import StreamCache

__all__ = ["DEFAULT_LOCATION", "CacheServer", "call_options", "serve", "ticket"]

#: Where :func:`serve` listens unless told otherwise: a free port on the loopback interface.
DEFAULT_LOCATION = "grpc://127.0.0.1:0"

_TCP_SCHEMES = ("grpc", "grpc+tcp")
_TLS_SCHEME = "grpc+tls"
_TICKET_KEYS = frozenset({"columns", "start", "stop"})


def __dir__() -> list[str]:
    # The public names only, not the imports of this module.
    return list(__all__)


class _TicketError(ValueError):
    """A ticket or descriptor that does not parse; its message goes to the client."""


# -- tickets -----------------------------------------------------------------


def ticket(
    columns: Sequence[str] | None = None, *, start: int = 0, stop: int | None = None
) -> flight.Ticket:
    """Build the ticket of a ``do_get`` on a :func:`serve` server.

    Parameters
    ----------
    columns : sequence of str, optional
        Only these columns, in this order (default: all).
    start : int, default 0
        The first batch to send.
    stop : int, optional
        The batch to stop before (default: to the end of the stream).

    Returns
    -------
    pyarrow.flight.Ticket
        Its bytes are a JSON object; clients in other languages can write it
        themselves.

    Raises
    ------
    TypeError
        If ``columns`` is not a sequence of str, or ``start``/``stop`` not an int.
    ValueError
        If ``start`` or ``stop`` is negative.

    Examples
    --------
    >>> ticket().ticket
    b'{}'
    >>> ticket(["x"], start=2, stop=4).ticket
    b'{"columns": ["x"], "start": 2, "stop": 4}'
    """
    payload: dict[str, Any] = {}
    if columns is not None:
        payload["columns"] = _column_list(columns, "columns")
    if _batch_index(start, "start"):
        payload["start"] = start
    if stop is not None:
        payload["stop"] = _batch_index(stop, "stop")
    return flight.Ticket(json.dumps(payload).encode())


def call_options(
    token: str | None = None, timeout: float | None = None
) -> flight.FlightCallOptions:
    """Options for every call of a client of a :func:`serve` server.

    Parameters
    ----------
    token : str, optional
        The server's bearer token, sent as ``authorization: Bearer <token>``.
    timeout : float, optional
        Seconds after which a call fails with ``FlightTimedOutError``.

    Returns
    -------
    pyarrow.flight.FlightCallOptions

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.flight
    >>> from batchcorder import StreamCache
    >>> with serve(StreamCache(pa.table({"x": [1]})), token="s3cret") as server:
    ...     client = pyarrow.flight.connect(server.location)
    ...     options = call_options("s3cret", timeout=10)
    ...     client.do_get(ticket(), options=options).read_all().num_rows
    1
    """
    headers = []
    if token is not None:
        headers.append((b"authorization", b"Bearer " + _check_token(token).encode()))
    return flight.FlightCallOptions(timeout=timeout, headers=headers)


def _column_list(columns: object, what: str) -> list[str]:
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
        raise TypeError(f"{what} must be a list of column names, got {columns!r}")
    names = list(columns)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what} must be a list of column names, got {name!r} in it")
    return names


def _batch_index(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


def _check_token(token: object) -> str:
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    if not token or not token.isprintable() or token != token.strip():
        raise ValueError("token must be non-empty printable text without surrounding spaces")
    return token


def _parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        payload = json.loads(data.decode() or "{}")
    except (UnicodeDecodeError, ValueError):
        raise _TicketError(f"the {what} is not JSON: {data[:80]!r}") from None
    if not isinstance(payload, dict):
        raise _TicketError(f"the {what} must be a JSON object, got {data[:80]!r}")
    return payload


def _parse_ticket(data: bytes) -> tuple[int, int | None, list[str] | None]:
    """``(start, stop, columns)`` of a ticket; :class:`_TicketError` if it is malformed."""
    payload = _parse_json_object(data, "ticket")
    unknown = sorted(set(payload) - _TICKET_KEYS)
    if unknown:
        raise _TicketError(
            f"unknown ticket keys {unknown}: a ticket may hold 'columns', 'start' and 'stop'"
        )
    try:
        start = _batch_index(payload.get("start", 0), "ticket 'start'")
        stop = payload.get("stop")
        if stop is not None:
            stop = _batch_index(stop, "ticket 'stop'")
        columns = payload.get("columns")
        if columns is not None:
            columns = _column_list(columns, "ticket 'columns'")
    except (TypeError, ValueError) as error:
        raise _TicketError(str(error)) from None
    return start, stop, columns


def _projected(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    if columns is None:
        return schema
    names = set(schema.names)
    for name in columns:
        if name not in names:
            raise _TicketError(f"unknown column {name!r}; the columns are {schema.names}")
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


def _wire_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a stream is sent with: dictionary-encoded fields decoded.

    A Flight stream written from Python cannot carry dictionaries that change
    between batches: pyarrow's ``GeneratorStream`` sends none, and pyarrow
    18's ``RecordBatchStream`` sends the first batch's dictionary for every
    batch, which gives wrong values. Decoded columns hold the same values.

    Examples
    --------
    >>> _wire_schema(pa.schema([("k", pa.dictionary(pa.int8(), pa.string())), ("v", pa.int64())]))
    k: string
    v: int64
    """
    return pa.schema([_decoded_field(field) for field in schema], metadata=schema.metadata)


def _batch_ranges(batches: int, parts: int) -> list[tuple[int, int]]:
    """Split ``range(batches)`` into at most ``parts`` contiguous, near-equal ranges.

    Examples
    --------
    >>> _batch_ranges(10, 4)
    [(0, 3), (3, 6), (6, 8), (8, 10)]
    >>> _batch_ranges(2, 4)
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


#: How pyarrow appends a Python traceback to the message of an error that
#: crossed the Arrow C stream interface.
_TRACEBACK_DETAIL = ". Detail: Python exception: Traceback"


def _remote_error(error: BaseException) -> flight.FlightError:
    """The error a client receives for ``error``: its type and message, no traceback.

    (A plain Python exception would reach the client with the server's traceback
    in its message; ``FlightCancelledError`` would make pyarrow clients raise
    ``KeyboardInterrupt``.)

    Examples
    --------
    >>> str(_remote_error(RuntimeError("upstream broke"))).split(". Detail")[0]
    'RuntimeError: upstream broke'
    """
    if isinstance(error, (flight.FlightUnauthenticatedError, flight.FlightUnavailableError)):
        return error
    if isinstance(error, _TicketError):
        return flight.FlightServerError(str(error))
    message = str(error).split(_TRACEBACK_DETAIL, 1)[0]
    return flight.FlightServerError(f"{type(error).__name__}: {message}")


def _flight_info(**arguments: Any) -> flight.FlightInfo:
    try:
        return flight.FlightInfo(**arguments, ordered=True)
    except TypeError:  # pyarrow < 19 has no ``ordered``; endpoints are in order anyway
        return flight.FlightInfo(**arguments)


# -- the Flight service ------------------------------------------------------


class _BearerToken(flight.ServerMiddlewareFactory):
    """Refuse every call whose ``authorization`` header is not ``Bearer <token>``."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._expected = f"Bearer {token}".encode()

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[Any]]) -> None:
        for value in headers.get("authorization", []):
            given = value.encode() if isinstance(value, str) else bytes(value)
            if hmac.compare_digest(given, self._expected):
                return None
        raise flight.FlightUnauthenticatedError(
            "this server needs a bearer token: send the header 'authorization: Bearer <token>'"
        )


class _CacheService(flight.FlightServerBase):
    """The Flight methods over one cache. Created and owned by :class:`CacheServer`.

    State guarded by ``_lock``: ``_closing`` (once set, streams end at their
    next batch and new ones are refused) and ``_active`` (streams being sent).
    Neither the lock nor the cache's own lock is held while a batch is sent.
    """

    def __init__(
        self,
        cache: StreamCache,
        location: str,
        name: str,
        endpoints: int,
        token: str | None,
        tls_certificates: list[tuple[bytes, bytes]] | None,
        verify_client: bool,
        root_certificates: bytes | None,
    ) -> None:
        self._cache = cache
        self._name = name
        self._endpoints = endpoints
        self._lock = threading.Lock()
        self._closing = False
        self._active = 0
        middleware = {"batchcorder-token": _BearerToken(token)} if token is not None else None
        super().__init__(
            location,
            tls_certificates=tls_certificates,
            verify_client=verify_client,
            root_certificates=root_certificates,
            middleware=middleware,
        )

    # -- describing the flight ---------------------------------------------

    def _columns_of(self, descriptor: flight.FlightDescriptor) -> list[str] | None:
        if descriptor.descriptor_type == flight.DescriptorType.PATH:
            path = [part.decode() if isinstance(part, bytes) else part for part in descriptor.path]
            if path != [self._name]:
                raise _TicketError(f"no flight at path {path}: this server serves [{self._name!r}]")
            return None
        payload = _parse_json_object(descriptor.command, "descriptor command")
        unknown = sorted(set(payload) - {"columns"})
        if unknown:
            raise _TicketError(f"unknown descriptor keys {unknown}: a command may hold 'columns'")
        columns = payload.get("columns")
        if columns is None:
            return None
        try:
            return _column_list(columns, "descriptor 'columns'")
        except TypeError as error:
            raise _TicketError(str(error)) from None

    def _info(
        self, descriptor: flight.FlightDescriptor, columns: list[str] | None
    ) -> flight.FlightInfo:
        cache = self._cache
        schema = _wire_schema(_projected(cache.schema, columns))
        stats = cache.stats
        total_records = total_bytes = -1
        ranges: list[tuple[int, int | None]] = [(0, None)]
        # With max_readers every do_get takes a reader slot and batches are
        # evicted behind the readers: one endpoint, so one reader per client.
        if stats.upstream_exhausted and cache.max_readers is None:
            total_records = stats.ingested_rows
            if columns is None:
                total_bytes = stats.ingested_bytes
            if stats.ingested_batches > 0:
                ranges = list(_batch_ranges(stats.ingested_batches, self._endpoints))
        endpoints = [
            flight.FlightEndpoint(ticket(columns, start=start, stop=stop), [])
            for start, stop in ranges
        ]
        return _flight_info(
            schema=schema,
            descriptor=descriptor,
            endpoints=endpoints,
            total_records=total_records,
            total_bytes=total_bytes,
        )

    def list_flights(self, context: flight.ServerCallContext, criteria: bytes) -> Iterator[Any]:
        try:
            info = self._info(flight.FlightDescriptor.for_path(self._name), None)
        except Exception as error:
            raise _remote_error(error) from None
        yield info

    def get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        try:
            return self._info(descriptor, self._columns_of(descriptor))
        except Exception as error:
            raise _remote_error(error) from None

    def get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        # pyarrow sends any error of get_schema, even a FlightError, with its
        # traceback and as a plain ArrowException: the message is still ours.
        try:
            schema = _projected(self._cache.schema, self._columns_of(descriptor))
            return flight.SchemaResult(_wire_schema(schema))
        except Exception as error:
            raise _remote_error(error) from None

    def list_actions(self, context: flight.ServerCallContext) -> list[Any]:
        return []

    # -- sending the data --------------------------------------------------

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.GeneratorStream:
        try:
            start, stop, columns = _parse_ticket(ticket.ticket)
            schema = _projected(self._cache.schema, columns)
        except Exception as error:
            raise _remote_error(error) from None
        with self._lock:
            if self._closing:
                raise flight.FlightUnavailableError("the Flight server is shutting down")
        sent = _wire_schema(schema)
        decode = None if sent.equals(schema) else sent
        return flight.GeneratorStream(sent, self._replay(start, stop, columns, decode))

    def _replay(
        self,
        start: int,
        stop: int | None,
        columns: list[str] | None,
        decode: pa.Schema | None,
    ) -> Iterator[pa.RecordBatch]:
        """One client's pass over the cache, pulled batch by batch by gRPC.

        The cache reader is taken when gRPC asks for the first batch, and
        closed when the stream ends, fails, or is dropped because the client
        went away (the generator is then closed, which runs the ``with``).
        """
        with self._lock:
            if self._closing:
                raise flight.FlightUnavailableError("the Flight server is shutting down")
            self._active += 1
        try:
            try:
                reader = self._cache.reader()
            except Exception as error:
                raise _remote_error(error) from None
            with reader:
                position = 0
                while stop is None or position < stop:
                    # Read without the lock: it only ever goes from False to True.
                    if self._closing:
                        raise flight.FlightUnavailableError("the Flight server is shutting down")
                    try:
                        batch = next(reader)
                    except StopIteration:
                        return
                    except Exception as error:
                        # The upstream's own error, with its message, for the client.
                        raise _remote_error(error) from None
                    if position >= start:
                        if columns is not None:
                            batch = batch.select(columns)
                        yield batch if decode is None else batch.cast(decode)
                    position += 1
        finally:
            with self._lock:
                self._active -= 1

    # -- lifetime ----------------------------------------------------------

    @property
    def active_streams(self) -> int:
        with self._lock:
            return self._active

    def begin_closing(self) -> None:
        with self._lock:
            self._closing = True


class CacheServer:
    """An Arrow Flight server over one :class:`~batchcorder.StreamCache`.

    Returned by :func:`serve`, already listening. Use it as a context manager,
    or call :meth:`close`. Closing the server does not close the cache.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.flight
    >>> from batchcorder import StreamCache
    >>> cache = StreamCache(pa.table({"x": range(10)}).to_reader(max_chunksize=2))
    >>> server = serve(cache, endpoints=2)
    >>> server.location.startswith("grpc://127.0.0.1:")
    True
    >>> client = pyarrow.flight.connect(server.location)
    >>> client.do_get(ticket()).read_all().num_rows  # pulls the upstream, once
    10
    >>> info = client.get_flight_info(server.descriptor)
    >>> info.total_records, [endpoint.ticket.ticket for endpoint in info.endpoints]
    (10, [b'{"stop": 3}', b'{"start": 3, "stop": 5}'])
    >>> server.close()
    >>> server.closed
    True
    """

    def __init__(self, service: _CacheService, location: str, name: str) -> None:
        self._service = service
        self._location = location
        self._name = name
        self._lock = threading.Lock()
        self._shutdown: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def location(self) -> str:
        """The URI clients connect to, such as ``grpc://127.0.0.1:40123``."""
        return self._location

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._service.port)

    @property
    def name(self) -> str:
        """The flight's name: its descriptor is the path ``[name]``."""
        return self._name

    @property
    def descriptor(self) -> flight.FlightDescriptor:
        """The descriptor of the whole cache, for ``get_flight_info``."""
        return flight.FlightDescriptor.for_path(self._name)

    @property
    def active_streams(self) -> int:
        """``do_get`` streams being sent now (each holds one cache reader)."""
        return self._service.active_streams

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has finished stopping the server."""
        return self._stopped.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server is closed (from another thread); Ctrl-C interrupts.

        Parameters
        ----------
        timeout : float, optional
            Give up after this many seconds.

        Returns
        -------
        bool
            Whether the server is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the server: refuse new calls, end the streams in flight, wait for them.

        Every stream being sent ends before its next batch; its client gets
        ``FlightUnavailableError``. Idempotent; the cache stays open.

        Parameters
        ----------
        timeout : float or None, default 10.0
            Seconds to wait for the calls in flight to end. A client that stops
            reading without disconnecting holds its call open until it reads
            or goes away (gRPC cannot cut it short); ``None`` waits for it.

        Raises
        ------
        TimeoutError
            If calls were still open after ``timeout`` seconds. The server
            accepts no new call and finishes stopping in the background once
            those clients read or disconnect.
        """
        with self._lock:
            if self._shutdown is None:
                self._service.begin_closing()
                # Shutting down blocks until every call ended: not in the caller's
                # thread, so that a timeout (and Ctrl-C) can interrupt the wait.
                self._shutdown = threading.Thread(
                    target=self._stop, name="batchcorder-flight-shutdown", daemon=True
                )
                self._shutdown.start()
        if not self.wait(timeout):
            raise TimeoutError(
                f"the Flight server at {self._location} still has "
                f"{self.active_streams} stream(s) open after {timeout} s: a client "
                "stopped reading without disconnecting"
            )

    def _stop(self) -> None:
        try:
            # pyarrow's own idempotent finalizer: shuts the server down once.
            self._service.__exit__(None, None, None)
        finally:
            self._stopped.set()

    def __enter__(self) -> CacheServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"serving {self._name!r} at {self._location}"
        return f"<CacheServer {state}>"


# -- serve() -----------------------------------------------------------------


def _read_pem(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"{what} must be PEM data as bytes or str, got {type(value).__name__}")


def _listen_uri(location: object) -> tuple[str, str]:
    """``(uri, scheme)`` of the ``location`` argument."""
    if isinstance(location, flight.Location):
        uri = location.uri.decode() if isinstance(location.uri, bytes) else str(location.uri)
    elif isinstance(location, str):
        uri = location
    else:
        raise TypeError(
            f"location must be a str such as 'grpc://127.0.0.1:0' or a "
            f"pyarrow.flight.Location, got {type(location).__name__}"
        )
    parts = urlsplit(uri)
    if parts.scheme not in (*_TCP_SCHEMES, _TLS_SCHEME, "grpc+unix"):
        raise ValueError(
            f"location must be a grpc://, grpc+tls:// or grpc+unix:// URI, got {uri!r}"
        )
    if parts.scheme != "grpc+unix":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise ValueError(
                f"location must name a host and a port (0 for any free one), got {uri!r}"
            )
    return uri, parts.scheme


def _bind_failure(uri: str) -> OSError | None:
    """Why the server could not listen at ``uri``, found by binding a socket there.

    gRPC reports only "Server did not start properly" (and logs the reason);
    a socket bound to the same address tells which: a port in use, an
    unknown host, an address of no interface here.
    """
    parts = urlsplit(uri)
    if parts.scheme == "grpc+unix":
        return None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            parts.hostname, parts.port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except OSError as error:
        return OSError(error.errno, f"cannot listen on {uri}: {error.strerror or error}")
    return None


def _served_uri(uri: str, port: int) -> str:
    """``uri`` with port 0 replaced by the port the server got."""
    parts = urlsplit(uri)
    if parts.scheme == "grpc+unix" or parts.port != 0:
        return uri
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def serve(
    cache: StreamCache,
    location: str | flight.Location = DEFAULT_LOCATION,
    *,
    name: str = "cache",
    token: str | None = None,
    tls_certificates: Sequence[tuple[bytes | str, bytes | str]] | None = None,
    verify_client: bool = False,
    root_certificates: bytes | str | None = None,
    endpoints: int = 4,
) -> CacheServer:
    """Serve ``cache`` over Arrow Flight until the returned server is closed.

    The cache may be live (its upstream still being pulled) or finished.
    Every ``do_get`` takes a new reader of the cache and replays it from its
    first batch, lazily: remote clients pull the upstream exactly as local
    readers do, once, however many of them there are. With ``max_readers`` set
    on the cache, every ``do_get`` takes one of its reader slots (for good:
    closing a reader frees no slot); ``get_flight_info`` and ``list_flights``
    take none.

    - ``list_flights`` and ``get_flight_info`` describe the flight: its schema
      and, once the upstream is exhausted, its rows, its bytes and up to
      ``endpoints`` tickets over contiguous ranges of batches, in order, so
      clients can split the work. Before that (or with ``max_readers``) there
      is one ticket for the whole stream and the counts are -1.
    - A ticket may carry a projection (see :func:`ticket`).
    - Dictionary-encoded fields are sent decoded, as their values' type, and
      the flight's schema says so (Flight streams written from Python cannot
      carry dictionaries that change between batches).
    - The upstream's failure reaches every client that reads up to it, as
      ``FlightServerError`` with the upstream's error type and message.
    - A client that disconnects mid-stream frees its reader at once (the
      server notices at its next write). No lock is held while a batch is sent.

    Parameters
    ----------
    cache : StreamCache
        The cache to serve; :meth:`CacheServer.close` leaves it open.
    location : str or pyarrow.flight.Location, default "grpc://127.0.0.1:0"
        Where to listen: loopback only by default, on a free port (see
        :attr:`CacheServer.location`). Give ``grpc://0.0.0.0:8815`` to accept
        connections from other machines, ``grpc+tls://...`` with
        ``tls_certificates`` for TLS.
    name : str, default "cache"
        The flight's path descriptor is ``[name]``.
    token : str, optional
        Require ``authorization: Bearer <token>`` on every call (see
        :func:`call_options`); other calls fail with
        ``FlightUnauthenticatedError``. Over a network, use it with TLS.
    tls_certificates : list of (cert, key), optional
        PEM certificate chains and private keys (pyarrow's own option);
        needs a ``grpc+tls://`` location.
    verify_client : bool, default False
        Mutual TLS: require a client certificate signed by
        ``root_certificates``.
    root_certificates : bytes or str, optional
        PEM roots that client certificates must chain to (mutual TLS).
    endpoints : int, default 4
        The most endpoints a finished cache is split into.

    Returns
    -------
    CacheServer
        Listening already; close it, or use it in a ``with`` block.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``location`` is not a gRPC URI with host and port, ``endpoints`` < 1,
        TLS options do not match the location's scheme, or ``token`` is empty.
    OSError
        If the server cannot listen at ``location`` (the port is in use, the
        host is unknown, ...), with the reason.
    pyarrow.ArrowException
        If the server does not start for another reason (a bad certificate, ...).

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.flight
    >>> from batchcorder import StreamCache
    >>> table = pa.table({"id": range(6), "name": list("abcdef")})
    >>> cache = StreamCache(table.to_reader(max_chunksize=2))
    >>> with serve(cache, token="s3cret") as server:
    ...     client = pyarrow.flight.connect(server.location)
    ...     options = call_options("s3cret", timeout=10)
    ...     live = client.get_flight_info(server.descriptor, options=options)
    ...     whole = client.do_get(live.endpoints[0].ticket, options=options).read_all()
    ...     done = client.get_flight_info(server.descriptor, options=options)
    ...     parts = [client.do_get(e.ticket, options=options).read_all() for e in done.endpoints]
    >>> live.total_records, len(live.endpoints), done.total_records, len(done.endpoints)
    (-1, 1, 6, 3)
    >>> whole.equals(table), pa.concat_tables(parts).equals(table), cache.ingested_count
    (True, True, 3)
    """
    if not isinstance(cache, StreamCache):
        raise TypeError(f"cache must be a batchcorder.StreamCache, got {type(cache).__name__}")
    uri, scheme = _listen_uri(location)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if isinstance(endpoints, bool) or not isinstance(endpoints, int):
        raise TypeError(f"endpoints must be an int, got {type(endpoints).__name__}")
    if endpoints < 1:
        raise ValueError(f"endpoints must be >= 1, got {endpoints}")
    if token is not None:
        token = _check_token(token)
    certificates = None
    if tls_certificates is not None:
        certificates = [
            (
                _read_pem(cert, "tls_certificates' certificate"),
                _read_pem(key, "tls_certificates' key"),
            )
            for cert, key in tls_certificates
        ]
        if not certificates:
            raise ValueError("tls_certificates must hold at least one (certificate, key) pair")
    if (scheme == _TLS_SCHEME) != (certificates is not None):
        raise ValueError(
            "a grpc+tls:// location needs tls_certificates, and tls_certificates "
            f"need a grpc+tls:// location; got location {uri!r} "
            f"{'with' if certificates else 'without'} tls_certificates"
        )
    roots = None
    if root_certificates is not None:
        roots = _read_pem(root_certificates, "root_certificates")
    if verify_client and roots is None:
        raise ValueError("verify_client=True needs root_certificates to check clients against")
    try:
        service = _CacheService(
            cache, uri, name, endpoints, token, certificates, bool(verify_client), roots
        )
    except pa.ArrowException as error:
        failure = _bind_failure(uri)
        if failure is not None:
            raise failure from error
        raise
    return CacheServer(service, _served_uri(uri, service.port), name)
