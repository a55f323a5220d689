"""``batchcorder.flight``: a cache served over Arrow Flight, read by clients here and in
other processes, over loopback only."""

from __future__ import annotations

import errno
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyarrow import flight

from batchcorder import StreamCache
from batchcorder.flight import CacheServer, call_options, serve, ticket
from tests.conftest import CountingSource, UpstreamFailure, make_batches

MakeCache = Callable[..., StreamCache]

#: Seconds any one call, subprocess or wait of these tests may take.
TIMEOUT = 60

#: A Flight client in a process of its own. argv[1] is JSON: the location and a
#: list of calls, each {"ticket": {...}, "token": str|null, "stop_after": int|null,
#: "out": path|null}. It prints one JSON result per call: rows and batches read,
#: or the error's type and message. With "stop_after" it leaves the process after
#: that many batches, without closing anything (a client that goes away).
CLIENT = r"""
import json, os, sys
import pyarrow as pa
from pyarrow import flight

spec = json.loads(sys.argv[1])
client = flight.connect(spec["location"])
results = []
for call in spec["calls"]:
    headers = []
    if call.get("token") is not None:
        headers.append((b"authorization", ("Bearer " + call["token"]).encode()))
    options = flight.FlightCallOptions(timeout=50, headers=headers)
    batches = []
    try:
        reader = client.do_get(flight.Ticket(json.dumps(call.get("ticket", {})).encode()), options)
        for chunk in reader:
            batches.append(chunk.data)
            if call.get("stop_after") == len(batches):
                print(json.dumps({"stopped_after": len(batches)}), flush=True)
                os._exit(0)
        if call.get("out"):
            with pa.OSFile(call["out"], "wb") as sink:
                with pa.ipc.new_file(sink, reader.schema) as writer:
                    for batch in batches:
                        writer.write_batch(batch)
        results.append({"rows": sum(b.num_rows for b in batches), "batches": len(batches)})
    except Exception as error:
        results.append({
            "error_type": type(error).__name__,
            "error": str(error),
            "rows": sum(b.num_rows for b in batches),
        })
print(json.dumps(results), flush=True)
"""


def start_client(location: str, calls: list[dict[str, Any]]) -> subprocess.Popen[str]:
    """Start :data:`CLIENT` in a new process."""
    spec = json.dumps({"location": location, "calls": calls})
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, spec],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_client(process: subprocess.Popen[str]) -> Any:
    """Wait for a client process; return what it printed, as JSON."""
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 0, stderr
    return json.loads(stdout)


def read_ipc_file(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


class GatedSource:
    """A one-shot stream that holds back its first batch until ``gate()`` is true.

    Counts the batches pulled and its exports; may fail at batch ``fail_at``.
    """

    def __init__(self, batches: list[pa.RecordBatch]) -> None:
        self.batches = batches
        self.gate: Callable[[], bool] = lambda: True
        self.pulled = 0
        self.exported = 0

    def _generate(self) -> Iterator[pa.RecordBatch]:
        wait_until(self.gate, "the upstream's gate opens")
        for batch in self.batches:
            self.pulled += 1
            yield batch

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        self.exported += 1
        schema = self.batches[0].schema
        reader = pa.RecordBatchReader.from_batches(schema, self._generate())
        return reader.__arrow_c_stream__(requested_schema)


@pytest.fixture
def start_server() -> Iterator[Callable[..., CacheServer]]:
    """:func:`serve`, with every server closed after the test."""
    servers: list[CacheServer] = []

    def start(cache: StreamCache, *args: Any, **kwargs: Any) -> CacheServer:
        server = serve(cache, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close(timeout=TIMEOUT)


def connect(server: CacheServer, **kwargs: Any) -> flight.FlightClient:
    return flight.connect(server.location, **kwargs)


OPTIONS = call_options(timeout=TIMEOUT)


def read(client: flight.FlightClient, flight_ticket: flight.Ticket | None = None) -> pa.Table:
    return client.do_get(flight_ticket or ticket(), OPTIONS).read_all()


def payloads(info: flight.FlightInfo) -> list[dict[str, Any]]:
    """The JSON objects of the tickets of ``info``'s endpoints."""
    return [json.loads(endpoint.ticket.ticket) for endpoint in info.endpoints]


def assert_nothing_of_the_server_in(message: str) -> None:
    """No path, source line or frame of the server's code in a client's error message.

    pyarrow appends its own frame and the handler's (``<batchcorder.flight>``)
    to INVALID_ARGUMENT and UNIMPLEMENTED errors; nothing else may be there.
    """
    assert "batchcorder/" not in message and '.py"' not in message
    assert "test_flight" not in message
    frames = [line for line in message.splitlines() if line.strip().startswith("File ")]
    assert all("pyarrow/_flight.pyx" in line or "<batchcorder.flight>" in line for line in frames)


# -- the module ---------------------------------------------------------------


def test_import_batchcorder_loads_no_flight_module() -> None:
    script = (
        "import sys, batchcorder, pyarrow as pa; pa.table(batchcorder.StreamCache(pa.table({'x': [1]})));"
        "print(sorted(name for name in sys.modules if 'flight' in name))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_the_module_lists_only_its_public_names() -> None:
    import batchcorder.flight

    assert dir(batchcorder.flight) == sorted(batchcorder.flight.__all__)
    assert all(hasattr(batchcorder.flight, name) for name in batchcorder.flight.__all__)


# -- clients in other processes -------------------------------------------------


def test_a_live_cache_serves_every_row_to_every_remote_client_and_pulls_once(
    make_cache: MakeCache, start_server: Callable[..., CacheServer], tmp_path: Path
) -> None:
    batches = make_batches(30, rows=50)
    source = GatedSource(batches)
    cache = make_cache(source)
    clients = 3
    # Nothing is pulled until every remote client holds a reader: they all read live.
    source.gate = lambda: cache.stats.readers_created >= clients
    server = start_server(cache)
    outs = [tmp_path / f"client-{index}.arrow" for index in range(clients)]
    processes = [start_client(server.location, [{"out": str(out)}]) for out in outs]
    results = [finish_client(process) for process in processes]
    expected = pa.Table.from_batches(batches)
    assert results == [[{"rows": 1500, "batches": 30}]] * clients
    for out in outs:
        assert read_ipc_file(out).equals(expected)
    assert (source.pulled, source.exported) == (30, 1)
    assert cache.stats.readers_created == clients
    assert server.active_streams == 0


def failing_reader(batches: list[pa.RecordBatch], fail_at: int) -> pa.RecordBatchReader:
    """A pyarrow reader whose upstream raises :class:`UpstreamFailure` at batch ``fail_at``."""

    def generate() -> Iterator[pa.RecordBatch]:
        yield from batches[:fail_at]
        raise UpstreamFailure(f"upstream broke at batch {fail_at}")

    return pa.RecordBatchReader.from_batches(batches[0].schema, generate())


def test_the_upstream_failure_reaches_remote_clients_with_its_message(
    make_cache: MakeCache, start_server: Callable[..., CacheServer]
) -> None:
    cache = make_cache(failing_reader(make_batches(6), fail_at=3))
    server = start_server(cache)
    # The second call fails at once: the server knows the source failed.
    results = finish_client(start_client(server.location, [{}, {}]))
    assert len(results) == 2
    for result in results:
        assert result["error_type"] == "FlightServerError"
        assert result["error"].startswith(
            "the source failed after 3 batches: UpstreamFailure: upstream broke at batch 3"
        )
    assert [result["rows"] for result in results] == [15, 0]
    assert server.failure is not None
    assert cache.ingested_count == 3
    with pytest.raises(UpstreamFailure, match="upstream broke at batch 3"):
        list(cache.reader())  # local readers get the upstream's own exception


def test_an_upstream_failure_through_a_c_stream_reaches_the_client_without_traceback(
    start_server: Callable[..., CacheServer],
) -> None:
    # Across the C stream interface pyarrow appends the upstream's Python
    # traceback to its message: the client gets the message only.
    source = CountingSource(make_batches(6), fail_at=3)
    server = start_server(StreamCache(source))
    stream = connect(server).do_get(ticket(), OPTIONS)
    for _ in range(3):
        stream.read_chunk()
    with pytest.raises(flight.FlightServerError, match="upstream broke at batch 3") as failed:
        stream.read_chunk()
    assert "Traceback" not in str(failed.value)
    assert "test_flight.py" not in str(failed.value)


def test_without_the_token_every_call_is_refused(
    start_server: Callable[..., CacheServer],
) -> None:
    cache = StreamCache(CountingSource(make_batches(4)))
    server = start_server(cache, token="s3cret-token")
    process = start_client(server.location, [{}, {"token": "wrong"}, {"token": "s3cret-token"}])
    missing, wrong, right = finish_client(process)
    for refused in (missing, wrong):
        assert refused["error_type"] == "FlightUnauthenticatedError"
        assert "bearer token" in refused["error"]
    assert right == {"rows": 20, "batches": 4}
    client = connect(server)
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(client.list_flights(options=OPTIONS))
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(server.descriptor, OPTIONS)
    assert len(list(client.list_flights(options=call_options("s3cret-token", TIMEOUT)))) == 1
    assert cache.stats.readers_created == 1  # refused calls took no reader


def test_a_client_that_goes_away_mid_stream_frees_its_reader(
    start_server: Callable[..., CacheServer],
) -> None:
    # 13 MB: far more than gRPC buffers, so the server is still sending when the client leaves.
    batches = [pa.record_batch({"x": pa.array(range(i << 13, (i + 1) << 13))}) for i in range(200)]
    cache = StreamCache(CountingSource(batches), max_readers=2)
    cache.ingest_all()
    server = start_server(cache)
    process = start_client(server.location, [{"stop_after": 1}])
    assert finish_client(process) == {"stopped_after": 1}
    wait_until(lambda: server.active_streams == 0, "the server drops the stream")
    assert read(connect(server)).equals(pa.Table.from_batches(batches))
    # Had the first reader stayed open, it would pin every batch after the first.
    assert cache.stats.evicted_batches == 200
    assert cache.stats.memory_batches == 0


# -- describing the flight ------------------------------------------------------


def test_flight_info_describes_a_live_then_a_finished_cache(
    make_cache: MakeCache, start_server: Callable[..., CacheServer]
) -> None:
    batches = make_batches(10)
    source = CountingSource(batches)
    cache = make_cache(source)
    server = start_server(cache, endpoints=3)
    client = connect(server)
    (listed,) = client.list_flights(options=OPTIONS)
    live = client.get_flight_info(server.descriptor, OPTIONS)
    for info in (listed, live):
        assert info.schema == cache.schema
        assert info.descriptor.path == [b"cache"]
        assert (info.total_records, info.total_bytes) == (-1, -1)
        assert payloads(info) == [{"cache": server.identity}]
    assert source.pulled == 0  # describing a flight reads nothing
    cache.ingest_all()
    done = client.get_flight_info(server.descriptor, OPTIONS)
    assert (done.total_records, done.total_bytes) == (50, cache.stats.ingested_bytes)
    assert payloads(done) == [
        {"stop": 4, "cache": server.identity},
        {"start": 4, "stop": 7, "cache": server.identity},
        {"start": 7, "stop": 10, "cache": server.identity},
    ]
    assert all(endpoint.locations == [] for endpoint in done.endpoints)  # this server
    parts = [read(client, endpoint.ticket) for endpoint in done.endpoints]
    assert [part.num_rows for part in parts] == [20, 15, 15]
    assert pa.concat_tables(parts).equals(pa.Table.from_batches(batches))
    assert client.get_schema(server.descriptor, OPTIONS).schema == cache.schema
    assert source.pulled == 10


def test_a_descriptor_command_describes_a_projection(
    start_server: Callable[..., CacheServer],
) -> None:
    batches = make_batches(4)
    cache = StreamCache(CountingSource(batches))
    cache.ingest_all()
    server = start_server(cache, endpoints=2)
    client = connect(server)
    command = flight.FlightDescriptor.for_command(json.dumps({"columns": ["label", "id"]}))
    info = client.get_flight_info(command, OPTIONS)
    assert info.schema.names == ["label", "id"]
    assert (info.total_records, info.total_bytes) == (20, -1)
    table = pa.concat_tables(read(client, endpoint.ticket) for endpoint in info.endpoints)
    assert table.equals(pa.Table.from_batches(batches).select(["label", "id"]))
    assert client.get_schema(command, OPTIONS).schema.names == ["label", "id"]


@settings(max_examples=25, deadline=None)
@given(count=st.integers(0, 30), parts=st.integers(1, 8))
def test_the_endpoints_of_a_finished_cache_cover_it_in_order(count: int, parts: int) -> None:
    batches = make_batches(count, rows=3) if count else []
    schema = make_batches(1)[0].schema
    table = pa.Table.from_batches(batches, schema=schema)
    with (
        StreamCache(table.to_reader(max_chunksize=3)) as cache,
        serve(cache, endpoints=parts) as server,
    ):
        cache.ingest_all()
        client = connect(server)
        info = client.get_flight_info(server.descriptor, OPTIONS)
        assert 1 <= len(info.endpoints) <= max(1, min(parts, count))
        read_back = [read(client, endpoint.ticket) for endpoint in info.endpoints]
        sizes = [part.num_rows for part in read_back]
        assert max(sizes) - min(sizes) <= 3  # one batch at most between endpoints
        assert pa.concat_tables(read_back).equals(table)
        assert info.total_records == 3 * count


# -- do_get ---------------------------------------------------------------------


def test_do_get_replays_the_cache_with_a_projection_and_batch_ranges(
    make_cache: MakeCache, start_server: Callable[..., CacheServer]
) -> None:
    batches = make_batches(8)
    source = CountingSource(batches)
    cache = make_cache(source)
    server = start_server(cache)
    client = connect(server)
    table = pa.Table.from_batches(batches)
    assert read(client, ticket(columns=["value", "id"])).equals(table.select(["value", "id"]))
    assert source.pulled == 8
    assert read(client).equals(table)
    assert read(client, ticket(start=2, stop=5)).equals(pa.Table.from_batches(batches[2:5]))
    assert read(client, ticket(["label"], start=7, stop=100)).equals(
        pa.Table.from_batches(batches[7:]).select(["label"])
    )
    with pytest.raises(pa.ArrowInvalid, match=r"'start' \(9\) is beyond the end .*8 batches"):
        read(client, ticket(start=9))
    assert source.pulled == 8 and cache.stats.readers_created == 5


def test_dictionary_encoded_columns_are_sent_decoded_with_every_value(
    make_cache: MakeCache, start_server: Callable[..., CacheServer]
) -> None:
    # Each batch has its own dictionary: a stream that kept the first one
    # would give wrong values.
    schema = pa.schema(
        [
            pa.field("k", pa.dictionary(pa.int32(), pa.string()), metadata={b"unit": b"none"}),
            pa.field("s", pa.struct([("d", pa.dictionary(pa.int8(), pa.string()))])),
            pa.field("n", pa.int64(), nullable=False),
        ],
        metadata={b"source": b"test"},
    )
    batches = [
        pa.record_batch(
            [
                pa.array(words).dictionary_encode(),
                pa.StructArray.from_arrays(
                    [
                        pa.array(words[::-1])
                        .dictionary_encode()
                        .cast(schema.field("s").type[0].type)
                    ],
                    fields=[schema.field("s").type[0]],
                ),
                pa.array(range(len(words))),
            ],
            schema=schema,
        )
        for words in (["a", "b"], ["c", "d", "c"], ["e"])
    ]
    cache = make_cache(pa.RecordBatchReader.from_batches(schema, batches))
    server = start_server(cache)
    client = connect(server)
    decoded = pa.schema(
        [
            pa.field("k", pa.string(), metadata={b"unit": b"none"}),
            pa.field("s", pa.struct([("d", pa.string())])),
            pa.field("n", pa.int64(), nullable=False),
        ],
        metadata={b"source": b"test"},
    )
    expected = pa.Table.from_batches(batches).cast(decoded)
    table = read(client)
    assert table.equals(expected, check_metadata=True)
    assert table.column("k").to_pylist() == ["a", "b", "c", "d", "c", "e"]
    assert read(client, ticket(["s"])).equals(expected.select(["s"]))
    assert client.get_flight_info(server.descriptor, OPTIONS).schema.equals(decoded, True)
    assert client.get_schema(server.descriptor, OPTIONS).schema.equals(decoded, True)


def test_a_range_of_a_live_cache_pulls_only_as_far_as_its_end(
    start_server: Callable[..., CacheServer],
) -> None:
    source = CountingSource(make_batches(10))
    server = start_server(StreamCache(source))
    assert read(connect(server), ticket(stop=3)).num_rows == 15
    assert source.pulled == 3


def test_with_max_readers_every_do_get_takes_a_reader_slot(
    start_server: Callable[..., CacheServer],
) -> None:
    cache = StreamCache(CountingSource(make_batches(4)), max_readers=2)
    cache.ingest_all()
    server = start_server(cache)
    client = connect(server)
    info = client.get_flight_info(server.descriptor, OPTIONS)
    assert payloads(info) == [{"cache": server.identity}]  # one reader each
    assert cache.stats.readers_created == 0
    assert read(client).num_rows == 20
    assert read(client).num_rows == 20
    with pytest.raises(flight.FlightUnavailableError, match=r"Maximum number of readers \(2\)"):
        read(client)


@pytest.mark.parametrize(
    ("raw_ticket", "message"),
    [
        (b"not json", "the ticket is not JSON"),
        (b"[1, 2]", "the ticket must be a JSON object"),
        (b'{"rows": 3}', "unknown ticket keys 'rows'"),
        (b'{"start": -1}', "ticket 'start' must be >= 0"),
        (b'{"stop": "all"}', "ticket 'stop' must be an int"),
        (b'{"columns": "id"}', "ticket 'columns' must be a list of column names"),
        (b'{"columns": ["id", "nope"]}', "unknown column 'nope'"),
    ],
)
def test_a_bad_ticket_is_refused_with_a_message(
    start_server: Callable[..., CacheServer], raw_ticket: bytes, message: str
) -> None:
    cache = StreamCache(CountingSource(make_batches(2)))
    server = start_server(cache)
    client = connect(server)
    with pytest.raises(pa.ArrowInvalid) as refused:  # INVALID_ARGUMENT
        read(client, flight.Ticket(raw_ticket))
    assert str(refused.value).startswith(message)
    assert_nothing_of_the_server_in(str(refused.value))
    assert cache.stats.readers_created == 0
    assert read(client).num_rows == 10  # the server goes on


def test_an_unknown_descriptor_is_refused_with_a_message(
    start_server: Callable[..., CacheServer],
) -> None:
    server = start_server(StreamCache(pa.table({"x": [1]})), name="events")
    client = connect(server)
    assert client.get_flight_info(flight.FlightDescriptor.for_path("events"), OPTIONS)
    with pytest.raises(pa.ArrowInvalid, match=r"this server serves \['events'\]"):
        client.get_flight_info(flight.FlightDescriptor.for_path("other"), OPTIONS)
    command = flight.FlightDescriptor.for_command(b'{"columns": ["y"]}')
    with pytest.raises(pa.ArrowInvalid, match="unknown column 'y'"):
        client.get_flight_info(command, OPTIONS)
    with pytest.raises(pa.ArrowInvalid, match="unknown column 'y'") as refused:
        client.get_schema(command, OPTIONS)
    assert_nothing_of_the_server_in(str(refused.value))


def test_a_closed_cache_is_reported_to_the_client(
    start_server: Callable[..., CacheServer],
) -> None:
    cache = StreamCache(pa.table({"x": [1]}))
    server = start_server(cache)
    cache.close()
    with pytest.raises(flight.FlightUnavailableError, match="StreamCache is closed"):
        read(connect(server))


def test_a_client_side_engine_reads_the_stream_through_its_own_cache(
    start_server: Callable[..., CacheServer],
) -> None:
    batches = make_batches(6)
    cache = StreamCache(CountingSource(batches))
    server = start_server(cache)
    remote = StreamCache(connect(server).do_get(ticket(), OPTIONS).to_reader())
    local = pa.Table.from_batches(batches)  # noqa: F841 (named in the SQL)
    query = "SELECT count(*), sum(id), max(label), sum(value) FROM {}"
    expected = duckdb.sql(query.format("local")).fetchall()
    assert expected[0][0] == 30
    for _ in range(2):  # the second query is replayed by the client
        (got,) = duckdb.sql(query.format("remote")).fetchall()
        # A float sum depends on the order DuckDB's threads add in.
        assert got[:3] == expected[0][:3] and got[3] == pytest.approx(expected[0][3])
    assert cache.stats.readers_created == 1  # one do_get served both queries
    remote.close()


# -- lifetime -------------------------------------------------------------------


def test_close_ends_the_streams_in_flight_and_is_idempotent() -> None:
    pulling, release = threading.Event(), threading.Event()
    batches = make_batches(3)

    def generate() -> Iterator[pa.RecordBatch]:
        yield batches[0]
        pulling.set()
        wait_until(release.is_set, "the test releases the upstream")
        yield from batches[1:]

    cache = StreamCache(pa.RecordBatchReader.from_batches(batches[0].schema, generate()))
    server = serve(cache)
    try:
        stream = connect(server).do_get(ticket(), OPTIONS)
        assert stream.read_chunk().data.equals(batches[0])
        wait_until(pulling.is_set, "the server pulls batch 1")
        # The stream's thread waits in the upstream: closing has to wait for it.
        with pytest.raises(TimeoutError, match=r"1 do_get stream\(s\) waiting for the source"):
            server.close(timeout=0.3)
        assert not server.closed
        with pytest.raises(flight.FlightUnavailableError):
            read(connect(server))  # no new call once closing
    finally:
        release.set()
        server.close(timeout=TIMEOUT)
    assert server.closed
    server.close()
    with pytest.raises(flight.FlightUnavailableError, match="shutting down"):
        while True:
            stream.read_chunk()
    assert cache.ingested_count == 2  # the pull in flight completed, and no other began
    assert not cache.closed  # the server leaves the cache open
    cache.close()


def test_the_server_listens_on_loopback_by_default(
    start_server: Callable[..., CacheServer],
) -> None:
    server = start_server(StreamCache(pa.table({"x": [1]})))
    assert server.location == f"grpc://127.0.0.1:{server.port}"
    assert server.port > 0
    assert repr(server).startswith("<CacheServer serving 'cache' at grpc://127.0.0.1:")


def test_a_port_in_use_is_reported_as_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on grpc://127.0.0.1:{port}: ") as refused:
            serve(StreamCache(pa.table({"x": [1]})), f"grpc://127.0.0.1:{port}")
    assert refused.value.errno == errno.EADDRINUSE


def test_serve_over_tls(start_server: Callable[..., CacheServer], tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
            "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    cert = (tmp_path / "cert.pem").read_bytes()
    key = (tmp_path / "key.pem").read_bytes()
    server = start_server(
        StreamCache(pa.table({"x": [1, 2]})),
        "grpc+tls://127.0.0.1:0",
        tls_certificates=[(cert, key)],
        token="t",
    )
    assert server.location.startswith("grpc+tls://127.0.0.1:")
    client = connect(server, tls_root_certs=cert)
    assert client.do_get(ticket(), call_options("t", TIMEOUT)).read_all().num_rows == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cache": pa.table({"x": [1]})}, TypeError, "cache must be a batchcorder.StreamCache"),
        ({"location": 8815}, TypeError, "location must be a str"),
        ({"location": "http://127.0.0.1:0"}, ValueError, "location must be a grpc://"),
        ({"location": "grpc://127.0.0.1"}, ValueError, "must name a host and a port"),
        ({"endpoints": 0}, ValueError, "endpoints must be >= 1"),
        ({"endpoints": 2.5}, TypeError, "endpoints must be an int"),
        ({"name": ""}, ValueError, "name must be a non-empty str"),
        ({"token": ""}, ValueError, "token must be non-empty"),
        ({"token": b"x"}, TypeError, "token must be a str"),
        ({"location": "grpc+tls://127.0.0.1:0"}, ValueError, "needs tls_certificates"),
        ({"tls_certificates": [(b"c", b"k")]}, ValueError, "need a grpc+tls:// location"),
        ({"verify_client": True}, ValueError, "needs a grpc+tls:// location"),
        ({"root_certificates": b"ca"}, ValueError, "only used with verify_client=True"),
        ({"verify_client": 1}, TypeError, "verify_client must be a bool"),
        ({"username": "reader"}, ValueError, "username and password go together"),
        ({"username": "a:b", "password": "p"}, ValueError, "must not contain ':'"),
    ],
)
def test_serve_refuses_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"cache": StreamCache(pa.table({"x": [1]})), **kwargs}
    with pytest.raises(error, match=message.replace("(", r"\(").replace("+", r"\+")):
        serve(**arguments)


def test_ticket_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError, match="columns must be a list of column names"):
        ticket("id")
    with pytest.raises(ValueError, match="start must be >= 0"):
        ticket(start=-1)
    with pytest.raises(TypeError, match="stop must be an int"):
        ticket(stop=1.5)  # type: ignore[arg-type]
