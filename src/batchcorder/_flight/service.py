"""The Flight methods behind :func:`batchcorder.flight.serve`.

:class:`CacheService` answers every Flight call over one cache. It is
created by :func:`batchcorder.flight.serve` and owned by its
:class:`~batchcorder.flight.CacheServer`. Every method's work returns a
:class:`~batchcorder._flight.errors.Refusal` rather than raising, so clients
get one short message and a proper status (see :mod:`batchcorder._flight.errors`);
the details go to the ``batchcorder.flight`` logger.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyarrow import flight

from batchcorder import StreamCache, StreamCacheReader
from batchcorder._flight.auth import Credentials, HandshakeOnHeaders, HeaderAuth
from batchcorder._flight.errors import (
    LOGGER,
    Failed,
    InvalidArgument,
    Refusal,
    Unavailable,
    Unimplemented,
    answer,
    failure_message,
    refused,
    relay,
)
from batchcorder._flight.wire import (
    batch_ranges,
    descriptor_columns,
    encode_ticket,
    flight_info,
    parse_ticket,
    projected,
    wire_schema,
)
from batchcorder.errors import BatchEvictedError, CacheClosedError, ReaderLimitError

__all__ = ["CacheService"]

#: The key the credentials middleware is registered under in the Flight server.
_AUTH_MIDDLEWARE = "batchcorder-auth"

#: What a ``do_get`` stream is doing, for :meth:`CacheService.open_calls`.
_WAITING = "waiting for the source's next batch (the upstream is being pulled)"
_READING = "reading the cache"
_SENDING = (
    "sending a batch to a client that has not read it (stopped reading without disconnecting)"
)

#: Errors of one reader, not of the source: they fail that call only.
_READER_ERRORS = (ReaderLimitError, BatchEvictedError, CacheClosedError)


class CacheService(flight.FlightServerBase):
    """The Flight methods over one cache. Created and owned by ``CacheServer``.

    State guarded by ``_lock``: ``_closing`` (once set, streams end at their
    next batch and new ones are refused), ``_failure`` (what clients are told
    once the source failed) and ``_calls`` (what each call in flight is doing).
    Neither the lock nor the cache's own lock is held while a batch is sent.
    """

    def __init__(
        self,
        cache: StreamCache,
        location: str,
        name: str,
        endpoints: int,
        credentials: Credentials,
        tls_certificates: list[tuple[bytes, bytes]] | None,
        verify_client: bool,
        root_certificates: bytes | None,
    ) -> None:
        self._cache = cache
        self._name = name
        self._endpoints = endpoints
        #: Written in every ticket this server hands out; tickets naming another are refused.
        self.identity = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._closing: str | None = None
        self._failure: str | None = None
        self._calls: dict[int, str] = {}
        self._call_numbers = itertools.count()
        middleware = {_AUTH_MIDDLEWARE: HeaderAuth(credentials)} if credentials.required else None
        super().__init__(
            location,
            auth_handler=HandshakeOnHeaders() if credentials.basic else None,
            tls_certificates=tls_certificates,
            verify_client=verify_client,
            root_certificates=root_certificates,
            middleware=middleware,
        )

    # -- describing the flight ---------------------------------------------

    def _info(
        self, descriptor: flight.FlightDescriptor, columns: list[str] | None
    ) -> flight.FlightInfo:
        self._refuse_if_failed()
        cache = self._cache
        stats = cache.stats  # one snapshot: the counts and the endpoints agree
        total_records = total_bytes = -1
        ranges: list[tuple[int, int | None]] = [(0, None)]
        # With max_readers every do_get takes a reader slot and batches are
        # evicted behind the readers: one endpoint, so one reader per client.
        if stats.upstream_exhausted and cache.max_readers is None:
            total_records = stats.ingested_rows
            if columns is None:
                total_bytes = stats.ingested_bytes
            if stats.ingested_batches > 0:
                ranges = list(batch_ranges(stats.ingested_batches, self._endpoints))
        endpoints = [
            flight.FlightEndpoint(encode_ticket(columns, start, stop, self.identity), [])
            for start, stop in ranges
        ]
        return flight_info(
            schema=wire_schema(projected(cache.schema, columns)),
            descriptor=descriptor,
            endpoints=endpoints,
            total_records=total_records,
            total_bytes=total_bytes,
        )

    def _list_flights(self, context: flight.ServerCallContext, criteria: bytes) -> list[Any]:
        return [self._info(flight.FlightDescriptor.for_path(self._name), None)]

    def _get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        return self._info(descriptor, descriptor_columns(descriptor, self._name))

    def _get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        columns = descriptor_columns(descriptor, self._name)
        return flight.SchemaResult(wire_schema(projected(self._cache.schema, columns)))

    def list_actions(self, context: flight.ServerCallContext) -> list[Any]:
        return []

    # -- what this server does not do --------------------------------------

    def _do_put(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        raise Unimplemented("this server is read-only: do_put is not offered")

    def _do_action(self, context: Any, action: Any) -> None:
        raise Unimplemented("this server offers no actions")

    def _do_exchange(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        raise Unimplemented("this server does not offer do_exchange")

    # -- sending the data --------------------------------------------------

    def _do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.GeneratorStream:
        start, stop, columns = parse_ticket(ticket.ticket, self.identity)
        schema = projected(self._cache.schema, columns)
        self._refuse_if_failed()
        with self._lock:
            self._refuse_if_closing()
        sent = wire_schema(schema)
        decode = None if sent.equals(schema) else sent
        refusal = Refusal()
        batches = self._replay(start, stop, columns, decode, refusal)
        return flight.GeneratorStream(sent, relay(batches, refusal))

    def _refuse_if_closing(self) -> None:
        # Called under the lock, or without it where a stale None only
        # delays the end by one batch: ``_closing`` is set once.
        if self._closing is not None:
            raise Unavailable(self._closing)

    def _refuse_if_failed(self) -> None:
        failure = self._failure  # set once
        if failure is not None:
            raise Failed(failure)
        if self._cache.closed:
            # The cache's one end (close()) ends every consumer alike: the
            # flight is not described as if it could still be read.
            raise Unavailable("the cache cannot be read: StreamCache is closed")

    def _replay(
        self,
        start: int,
        stop: int | None,
        columns: list[str] | None,
        decode: pa.Schema | None,
        refusal: Refusal,
    ) -> Iterator[pa.RecordBatch]:
        """One client's pass over the cache, pulled batch by batch by gRPC; never raises.

        The cache reader is taken when gRPC asks for the first batch, and
        closed when the stream ends, fails, or is dropped because the client
        went away (the generator is then closed, which runs the ``with``).
        A failure is left in ``refusal`` for :func:`relay` to raise.
        """
        call = self._begin_call(_READING)
        try:
            self._refuse_if_closing()
            with self._new_reader() as reader:
                for batch in self._batches_in_range(reader, start, stop, call):
                    self._set_call(call, _SENDING)
                    yield _as_sent(batch, columns, decode)
        except Exception as error:  # every failure reaches the client as a refusal
            refusal.error = refused(error, "do_get").error
        finally:
            self._end_call(call)

    def _new_reader(self) -> StreamCacheReader:
        try:
            return self._cache.reader()
        except _READER_ERRORS as error:
            raise Unavailable(f"the cache cannot take another reader now: {error}") from error
        except OSError as error:  # the cache file was cut or replaced
            raise Failed(failure_message(error)) from error

    def _batches_in_range(
        self, reader: StreamCacheReader, start: int, stop: int | None, call: int
    ) -> Iterator[pa.RecordBatch]:
        """The batches ``start`` to ``stop`` of ``reader``, ending early if the server closes."""
        position = 0
        while stop is None or position < stop:
            self._refuse_if_closing()
            self._refuse_if_failed()
            pulling = position >= self._cache.ingested_count
            self._set_call(call, _WAITING if pulling else _READING)
            try:
                batch = next(reader)
            except StopIteration:
                _check_range(start, position)
                return
            except _READER_ERRORS as error:
                raise Unavailable(f"this stream cannot go on: {error}") from error
            except Exception as error:
                raise Failed(self.record_failure(error, position)) from error
            if position >= start:
                yield batch
            position += 1

    # -- the source's failure ----------------------------------------------

    def record_failure(self, error: BaseException, position: int | None = None) -> str:
        """Remember that the source (or the cache) failed; return what clients are told.

        From then on ``get_flight_info`` and new ``do_get`` calls fail with it,
        and streams in flight end with it at their next batch.
        """
        where = "" if position is None else f" after {position:,} batches"
        message = f"the source failed{where}: {failure_message(error)}"
        with self._lock:
            if self._failure is None:
                self._failure = message
                LOGGER.error("the source failed", exc_info=error)
            return self._failure

    @property
    def failure(self) -> str | None:
        """What clients are told of the source's failure, if it failed."""
        return self._failure

    # -- calls in flight ---------------------------------------------------

    def _begin_call(self, state: str) -> int:
        with self._lock:
            call = next(self._call_numbers)
            self._calls[call] = state
        return call

    def _set_call(self, call: int, state: str) -> None:
        self._calls[call] = state  # one key's value: atomic

    def _end_call(self, call: int) -> None:
        with self._lock:
            self._calls.pop(call, None)

    def open_calls(self) -> str:
        """What the calls in flight are doing, in words, for an error message."""
        with self._lock:
            states = Counter(self._calls.values())
        if not states:
            return (
                "no do_get stream is open: gRPC is still finishing a call that did not "
                "reach the server's code (a large request still being received, or a "
                "reply being sent)"
            )
        return "; ".join(f"{count} do_get stream(s) {state}" for state, count in states.items())

    @property
    def active_streams(self) -> int:
        with self._lock:
            return len(self._calls)

    # -- lifetime ----------------------------------------------------------

    def begin_closing(self) -> None:
        with self._lock:
            if self._closing is None:
                closing = "the Flight server is shutting down"
                if self._failure is not None:
                    closing += f": {self._failure}"
                self._closing = closing

    # The Flight methods pyarrow calls: each raises only what the client is sent.
    list_flights = answer("list_flights", _list_flights)
    get_flight_info = answer("get_flight_info", _get_flight_info)
    get_schema = answer("get_schema", _get_schema)
    do_get = answer("do_get", _do_get)
    do_put = answer("do_put", _do_put)
    do_action = answer("do_action", _do_action)
    do_exchange = answer("do_exchange", _do_exchange)


def _check_range(start: int, batches: int) -> None:
    """Refuse a range starting past the last of the ``batches`` of the finished stream.

    A ``stop`` past the end is cut to the end, as a slice is; a ``start``
    there would make an empty stream that pretends to be the range asked for.
    """
    if start > 0 and start >= batches:
        raise InvalidArgument(
            f"ticket 'start' ({start}) is beyond the end of the stream ({batches:,} batches)"
        )


def _as_sent(
    batch: pa.RecordBatch, columns: list[str] | None, decode: pa.Schema | None
) -> pa.RecordBatch:
    """``batch`` as the client receives it: projected, then its dictionaries decoded."""
    if columns is not None:
        batch = batch.select(columns)
    return batch if decode is None else batch.cast(decode)
