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
  indices, ``stop`` excluded); ``{}`` is the whole stream. The tickets
  ``get_flight_info`` hands out also hold ``"cache"``, the identity of the
  cache and of this run of the server: another server (or a later run)
  refuses them. A range beyond the end of the stream is refused;
- the flight is described by the path descriptor ``[name]`` (``"cache"`` by
  default), or by a command descriptor holding ``{"columns": [...]}`` for a
  projection.

Tickets and descriptors over a few KiB are refused unread (16 KiB for a
descriptor). Failed calls get one short message and the status that says why
(invalid argument, unimplemented, unauthenticated, unavailable); the details
go to the ``batchcorder.flight`` logger. See ``docs/security.md``.

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

import threading
import time
from collections.abc import Sequence

from pyarrow import flight

from batchcorder import StreamCache
from batchcorder._closing import ClosesOnExit
from batchcorder._flight.auth import Credentials, check_secret
from batchcorder._flight.errors import LOGGER
from batchcorder._flight.listen import (
    check_endpoints,
    check_name,
    check_tls,
    client_locations,
    client_roots,
    is_loopback_uri,
    listen_uri,
    pem_pairs,
    start_service,
)
from batchcorder._flight.service import CacheService
from batchcorder._flight.wire import check_token, encode_ticket

__all__ = ["DEFAULT_LOCATION", "CacheServer", "call_options", "serve", "ticket"]

#: Where :func:`serve` listens unless told otherwise: a free port on the loopback interface.
DEFAULT_LOCATION = "grpc://127.0.0.1:0"

#: How long :meth:`CacheServer.close` waits for the calls in flight by default.
_CLOSE_TIMEOUT = 10.0

#: How often :meth:`CacheServer.wait` wakes up, so that Ctrl-C interrupts it promptly.
_WAIT_POLL_SECONDS = 0.2

#: The most endpoints a finished cache is split into by default.
_DEFAULT_ENDPOINTS = 4


def __dir__() -> list[str]:
    # The public names only, not the imports of this module.
    return list(__all__)


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
    return encode_ticket(columns, start, stop)


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
        headers.append((b"authorization", b"Bearer " + check_token(token).encode()))
    return flight.FlightCallOptions(timeout=timeout, headers=headers)


# -- the server ---------------------------------------------------------------


class CacheServer(ClosesOnExit):
    """An Arrow Flight server over one :class:`~batchcorder.StreamCache`.

    Returned by :func:`serve`, already listening. Use it as a context manager,
    or call :meth:`close`. Closing the server does not close the cache.

    Examples
    --------
    >>> import json
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
    >>> [json.loads(endpoint.ticket.ticket) for endpoint in info.endpoints] == [
    ...     {"stop": 3, "cache": server.identity},
    ...     {"start": 3, "stop": 5, "cache": server.identity},
    ... ]
    True
    >>> info.total_records
    10
    >>> server.close()
    >>> server.closed
    True
    """

    def __init__(self, service: CacheService, locations: list[str], name: str) -> None:
        self._service = service
        self._locations = locations
        self._location = locations[0]
        self._name = name
        self._lock = threading.Lock()
        self._shutdown: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def location(self) -> str:
        """The URI clients connect to, such as ``grpc://127.0.0.1:40123``.

        For a server listening on every interface (``0.0.0.0``), the loopback
        address; :attr:`locations` has the others.
        """
        return self._location

    @property
    def locations(self) -> list[str]:
        """Every URI a client can connect to: :attr:`location` first, then this
        machine's name and addresses when the server listens on every interface."""
        return list(self._locations)

    @property
    def identity(self) -> str:
        """The identity written in the tickets this server hands out (per cache and run)."""
        return self._service.identity

    @property
    def failure(self) -> str | None:
        """What clients are told of the source's failure, or None while it has not failed."""
        return self._service.failure

    def report_failure(self, error: BaseException) -> None:
        """Tell clients that the source (or the cache) failed with ``error``.

        Readers of the server find the failure themselves when they reach it;
        call this when it is found elsewhere (a local ``ingest_all()``).
        From then on ``get_flight_info`` fails with it, so do new ``do_get``
        calls, and streams in flight end with it at their next batch. The
        clients get the error's type and first line (the cache's file
        errors, without the file's path); the details go to the log.

        Parameters
        ----------
        error : BaseException
            The source's error.
        """
        if not isinstance(error, BaseException):
            raise TypeError(f"error must be an exception, got {type(error).__name__}")
        self._service.record_failure(error)

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
        while not self._stopped.wait(_WAIT_POLL_SECONDS):
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def close(self, timeout: float | None = _CLOSE_TIMEOUT) -> None:
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
                f"the Flight server at {self._location} has not stopped after {timeout} s: "
                f"{self._service.open_calls()}"
            )

    def _stop(self) -> None:
        try:
            # pyarrow's own idempotent finalizer: shuts the server down once.
            self._service.__exit__(None, None, None)
        finally:
            self._stopped.set()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"serving {self._name!r} at {self._location}"
        return f"<CacheServer {state}>"


# -- serve() -----------------------------------------------------------------


def serve(
    cache: StreamCache,
    location: str | flight.Location = DEFAULT_LOCATION,
    *,
    name: str = "cache",
    token: str | None = None,
    tls_certificates: Sequence[tuple[bytes | str, bytes | str]] | None = None,
    verify_client: bool = False,
    root_certificates: bytes | str | None = None,
    endpoints: int = _DEFAULT_ENDPOINTS,
    username: str | None = None,
    password: str | None = None,
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
    - The upstream's failure reaches every client as ``FlightServerError``
      with the upstream's error type and message: streams in flight end with
      it, later ``do_get`` and ``get_flight_info`` calls fail with it.
    - Bad tickets and descriptors (malformed, over a few KiB, a range beyond
      the end, a ticket of another server or run) fail with INVALID_ARGUMENT
      (``pyarrow.ArrowInvalid``); ``do_put``, ``do_action`` and
      ``do_exchange`` with UNIMPLEMENTED. Details go to the
      ``batchcorder.flight`` logger, not to clients.
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
        ``FlightUnauthenticatedError`` before their ticket is decoded. Over a
        network, use it with TLS.
    tls_certificates : list of (cert, key), optional
        PEM certificate chains and private keys (pyarrow's own option);
        needs a ``grpc+tls://`` location.
    verify_client : bool, default False
        Mutual TLS: require a client certificate signed by
        ``root_certificates``; needs a ``grpc+tls://`` location.
    root_certificates : bytes or str, optional
        PEM roots that client certificates must chain to; only with
        ``verify_client=True``.
    endpoints : int, default 4
        The most endpoints a finished cache is split into.
    username, password : str, optional
        Basic auth: clients log in with the standard Flight handshake
        (``FlightClient.authenticate_basic_token(username, password)``, ADBC
        and Java clients do the same), get a bearer token back and send it on
        every call. Works alongside ``token``.

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
        a TLS option cannot take effect (``tls_certificates`` or
        ``verify_client`` without a ``grpc+tls://`` location, a TLS location
        without certificates, ``verify_client`` without
        ``root_certificates`` or the other way round), ``token`` is empty, or
        only one of ``username`` and ``password`` is given.
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
    uri, scheme = listen_uri(location)
    name = check_name(name)
    endpoints = check_endpoints(endpoints)
    credentials = _credentials(token, username, password)
    certificates = pem_pairs(tls_certificates)
    check_tls(uri, scheme, certificates)
    roots = client_roots(scheme, root_certificates, verify_client)
    service = start_service(
        cache, uri, name, endpoints, credentials, certificates, bool(verify_client), roots
    )
    locations = client_locations(uri, service.port)
    if credentials.required and certificates is None and not is_loopback_uri(uri):
        LOGGER.warning(
            "serving at %s over plain gRPC: tokens and passwords travel in clear text", uri
        )
    return CacheServer(service, locations, name)


def _credentials(token: str | None, username: str | None, password: str | None) -> Credentials:
    """What calls must carry, from ``serve``'s arguments, checked."""
    if token is not None:
        token = check_token(token)
    if (username is None) != (password is None):
        raise ValueError("username and password go together: give both or neither")
    if username is not None:
        username = check_secret(username, "username")
        if ":" in username:
            raise ValueError("username must not contain ':' (basic auth separates it with one)")
        password = check_secret(password, "password")
    return Credentials(token, username, password)
