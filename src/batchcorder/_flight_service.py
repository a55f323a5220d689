"""The Flight methods behind :func:`batchcorder.flight.serve`.

:class:`CacheService` answers every Flight call over one cache;
:class:`BearerToken` refuses calls without the server's token. Both are
created by :func:`batchcorder.flight.serve` and owned by its
:class:`~batchcorder.flight.CacheServer`.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyarrow import flight

from batchcorder import StreamCache, StreamCacheReader
from batchcorder._flight_wire import (
    batch_ranges,
    descriptor_columns,
    encode_ticket,
    flight_info,
    parse_ticket,
    projected,
    remote_error,
    wire_schema,
)

__all__ = ["BearerToken", "CacheService"]

#: The key the token middleware is registered under in the Flight server.
_TOKEN_MIDDLEWARE = "batchcorder-token"


class BearerToken(flight.ServerMiddlewareFactory):
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


class CacheService(flight.FlightServerBase):
    """The Flight methods over one cache. Created and owned by ``CacheServer``.

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
        middleware = {_TOKEN_MIDDLEWARE: BearerToken(token)} if token is not None else None
        super().__init__(
            location,
            tls_certificates=tls_certificates,
            verify_client=verify_client,
            root_certificates=root_certificates,
            middleware=middleware,
        )

    # -- describing the flight ---------------------------------------------

    def _info(
        self, descriptor: flight.FlightDescriptor, columns: list[str] | None
    ) -> flight.FlightInfo:
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
            flight.FlightEndpoint(encode_ticket(columns, start, stop), []) for start, stop in ranges
        ]
        return flight_info(
            schema=wire_schema(projected(cache.schema, columns)),
            descriptor=descriptor,
            endpoints=endpoints,
            total_records=total_records,
            total_bytes=total_bytes,
        )

    def list_flights(self, context: flight.ServerCallContext, criteria: bytes) -> Iterator[Any]:
        try:
            info = self._info(flight.FlightDescriptor.for_path(self._name), None)
        except Exception as error:
            raise remote_error(error) from None
        yield info

    def get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        try:
            return self._info(descriptor, descriptor_columns(descriptor, self._name))
        except Exception as error:
            raise remote_error(error) from None

    def get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        # pyarrow sends any error of get_schema, even a FlightError, with its
        # traceback and as a plain ArrowException: the message is still ours.
        try:
            columns = descriptor_columns(descriptor, self._name)
            return flight.SchemaResult(wire_schema(projected(self._cache.schema, columns)))
        except Exception as error:
            raise remote_error(error) from None

    def list_actions(self, context: flight.ServerCallContext) -> list[Any]:
        return []

    # -- sending the data --------------------------------------------------

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.GeneratorStream:
        try:
            start, stop, columns = parse_ticket(ticket.ticket)
            schema = projected(self._cache.schema, columns)
        except Exception as error:
            raise remote_error(error) from None
        with self._lock:
            self._refuse_if_closing()
        sent = wire_schema(schema)
        decode = None if sent.equals(schema) else sent
        return flight.GeneratorStream(sent, self._replay(start, stop, columns, decode))

    def _refuse_if_closing(self) -> None:
        # Called under the lock, or without it where a stale False only
        # delays the end by one batch: ``_closing`` only goes from False to True.
        if self._closing:
            raise flight.FlightUnavailableError("the Flight server is shutting down")

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
            self._refuse_if_closing()
            self._active += 1
        try:
            try:
                reader = self._cache.reader()
            except Exception as error:
                raise remote_error(error) from None
            with reader:
                for batch in self._batches_in_range(reader, start, stop):
                    yield _as_sent(batch, columns, decode)
        finally:
            with self._lock:
                self._active -= 1

    def _batches_in_range(
        self, reader: StreamCacheReader, start: int, stop: int | None
    ) -> Iterator[pa.RecordBatch]:
        """The batches ``start`` to ``stop`` of ``reader``, ending early if the server closes."""
        position = 0
        while stop is None or position < stop:
            self._refuse_if_closing()
            try:
                batch = next(reader)
            except StopIteration:
                return
            except Exception as error:
                # The upstream's own error, with its message, for the client.
                raise remote_error(error) from None
            if position >= start:
                yield batch
            position += 1

    # -- lifetime ----------------------------------------------------------

    @property
    def active_streams(self) -> int:
        with self._lock:
            return self._active

    def begin_closing(self) -> None:
        with self._lock:
            self._closing = True


def _as_sent(
    batch: pa.RecordBatch, columns: list[str] | None, decode: pa.Schema | None
) -> pa.RecordBatch:
    """``batch`` as the client receives it: projected, then its dictionaries decoded."""
    if columns is not None:
        batch = batch.select(columns)
    return batch if decode is None else batch.cast(decode)
