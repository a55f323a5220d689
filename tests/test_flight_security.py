"""``batchcorder.flight`` as a network service: what clients get, and what they cannot do.

Every client runs in a process of its own and talks to the server over
loopback; each call has a deadline, so nothing here can hang.

Internal parts under test: ``batchcorder._cli.sources``, ``batchcorder._flight.listen``.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import StreamCache
from batchcorder._cli.sources import open_source
from batchcorder._flight.listen import client_locations
from batchcorder.flight import CacheServer, serve
from tests.conftest import CountingSource, make_batches

#: Seconds any one call or client process may take.
TIMEOUT = 60

#: A Flight client in a process of its own. argv[1] is JSON: {"location", "calls",
#: "tls_root", "cert", "key"}; each call is {"kind": get|info|schema|list|action|put|
#: exchange|login, ...}. It prints one JSON result per call: what came back, or the
#: error's type and message. A login's bearer token is sent on the calls after it.
CLIENT = r"""
import json, sys
import pyarrow as pa
from pyarrow import flight

spec = json.loads(sys.argv[1])
connect = {}
if spec.get("tls_root"):
    connect["tls_root_certs"] = open(spec["tls_root"], "rb").read()
if spec.get("cert"):
    connect["cert_chain"] = open(spec["cert"], "rb").read()
    connect["private_key"] = open(spec["key"], "rb").read()
client = flight.connect(spec["location"], **connect)
headers = []

def descriptor(call):
    if "command" in call:
        return flight.FlightDescriptor.for_command(call["command"].encode("latin-1"))
    return flight.FlightDescriptor.for_path(*[p.encode("latin-1") for p in call.get("path", ["cache"])])

def run(call):
    options = flight.FlightCallOptions(timeout=50, headers=headers + [
        (b"authorization", ("Bearer " + call["token"]).encode())] if call.get("token") else headers)
    kind = call["kind"]
    if kind == "login":
        pair = client.authenticate_basic_token(call["user"], call["password"], options)
        headers.append(pair)
        return {"login": pair[1].decode()[:7]}
    if kind == "get":
        text = call.get("ticket_text", "{}")
        if "middle" in call:  # a large ticket, built here: argv cannot carry it
            text = call["prefix"] + call["middle"] * call["count"] + call["suffix"]
        raw = text.encode("latin-1")
        reader = client.do_get(flight.Ticket(raw), options)
        rows = 0
        try:
            for chunk in reader:
                rows += chunk.data.num_rows
        except Exception as error:
            return {"error_type": type(error).__name__, "error": str(error), "rows": rows}
        return {"rows": rows}
    if kind == "info":
        info = client.get_flight_info(descriptor(call), options)
        return {"total_records": info.total_records, "endpoints": len(info.endpoints),
                "tickets": [e.ticket.ticket.decode() for e in info.endpoints]}
    if kind == "schema":
        return {"schema": str(client.get_schema(descriptor(call), options).schema)}
    if kind == "list":
        return {"flights": len(list(client.list_flights(options=options)))}
    if kind == "action":
        return {"results": len(list(client.do_action(flight.Action("x", b""), options)))}
    if kind == "put":
        writer, _ = client.do_put(descriptor(call), pa.schema({"x": pa.int64()}), options)
        writer.write_batch(pa.record_batch({"x": [1]}))
        writer.close()
        return {"put": True}
    if kind == "exchange":
        writer, reader = client.do_exchange(descriptor(call), options)
        writer.begin(pa.schema({"x": pa.int64()}))
        writer.done_writing()
        reader.read_all()
        return {"exchange": True}
    raise ValueError(kind)

results = []
for call in spec["calls"]:
    try:
        results.append(run(call))
    except Exception as error:
        results.append({"error_type": type(error).__name__, "error": str(error)})
print(json.dumps(results), flush=True)
"""


def remote(location: str, *calls: dict[str, Any], **connection: str) -> list[dict[str, Any]]:
    """Run ``calls`` in a client process of their own; return its results."""
    spec = json.dumps({"location": location, "calls": list(calls), **connection})
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, spec],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def first_line(result: dict[str, Any]) -> str:
    return str(result["error"]).split(". Detail:", 1)[0]


def assert_nothing_of_the_server_in(message: str) -> None:
    """No path, source line or frame of the server's code in a client's error message."""
    assert "batchcorder/" not in message and ".py" not in message.replace("_flight.pyx", "")
    frames = [line for line in message.splitlines() if line.strip().startswith("File ")]
    assert all("pyarrow/_flight.pyx" in line or "<batchcorder.flight>" in line for line in frames)


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


def finished_cache(batches: int = 4) -> StreamCache:
    cache = StreamCache(CountingSource(make_batches(batches)))
    cache.ingest_all()
    return cache


# -- 1. a crashed producer ----------------------------------------------------


def cut_stream(batches: int, kept: int) -> bytes:
    """An Arrow IPC stream of ``batches`` batches cut after ``kept``, without its end marker."""
    sink = io.BytesIO()
    parts = make_batches(batches)
    with pa.ipc.new_stream(sink, parts[0].schema) as writer:
        ends = []
        for batch in parts:
            writer.write_batch(batch)
            ends.append(sink.tell())
    return sink.getvalue()[: ends[kept - 1]]


def test_a_producer_that_died_is_an_error_for_every_client_live_or_late(
    start_server: Callable[..., CacheServer],
) -> None:
    source = open_source("-", io.BufferedReader(io.BytesIO(cut_stream(10, 5))))
    cache = StreamCache(source.reader)
    server = start_server(cache)
    live = remote(server.location, {"kind": "info"}, {"kind": "get"})
    assert live[0]["total_records"] == -1  # nothing pulled yet: live
    assert live[1]["error_type"] == "FlightServerError"
    assert live[1]["rows"] == 25  # the five batches before the cut, then the error
    late = remote(server.location, {"kind": "get"}, {"kind": "info"}, {"kind": "list"})
    for result in late:
        assert result["error_type"] == "FlightServerError"
        assert "the source failed after 5 batches: IncompleteStreamError" in result["error"]
        assert "without its end-of-stream marker" in result["error"]
    assert late[0].get("rows", 0) == 0


def test_a_failure_found_by_a_local_reader_is_reported_to_clients(
    start_server: Callable[..., CacheServer],
) -> None:
    source = open_source("-", io.BufferedReader(io.BytesIO(cut_stream(4, 2))))
    cache = StreamCache(source.reader)
    server = start_server(cache)
    with pytest.raises(ValueError, match="end-of-stream marker") as failed:
        cache.ingest_all()
    server.report_failure(failed.value)
    (info,) = remote(server.location, {"kind": "info"})
    assert info["error_type"] == "FlightServerError"
    assert "end-of-stream marker" in info["error"]


# -- 2. mutual TLS that cannot take effect ---------------------------------------


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=TIMEOUT)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate signed by the CA."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make certificates")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", str(tmp_path / "ca.key"), "-out",
            str(tmp_path / "ca.pem"), "-days", "1", "-subj", "/CN=test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    openssl("req", "-x509", *ec, "-keyout", str(tmp_path / "server.key"), "-out",
            str(tmp_path / "server.pem"), "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")  # fmt: skip
    openssl("req", *ec, "-keyout", str(tmp_path / "client.key"), "-out",
            str(tmp_path / "client.csr"), "-subj", "/CN=client")  # fmt: skip
    openssl("x509", "-req", "-in", str(tmp_path / "client.csr"), "-CA", str(tmp_path / "ca.pem"),
            "-CAkey", str(tmp_path / "ca.key"), "-CAcreateserial", "-days", "1",
            "-out", str(tmp_path / "client.pem"))  # fmt: skip
    return tmp_path


def test_mutual_tls_refuses_clients_without_a_certificate_of_the_ca(
    start_server: Callable[..., CacheServer], pki: Path
) -> None:
    server = start_server(
        finished_cache(),
        "grpc+tls://127.0.0.1:0",
        tls_certificates=[((pki / "server.pem").read_bytes(), (pki / "server.key").read_bytes())],
        verify_client=True,
        root_certificates=(pki / "ca.pem").read_bytes(),
    )
    root = str(pki / "server.pem")
    (anonymous,) = remote(server.location, {"kind": "get"}, tls_root=root)
    assert "error_type" in anonymous and anonymous.get("rows", 0) == 0
    (certified,) = remote(
        server.location,
        {"kind": "get"},
        tls_root=root,
        cert=str(pki / "client.pem"),
        key=str(pki / "client.key"),
    )
    assert certified == {"rows": 20}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verify_client": True, "root_certificates": b"ca"}, "needs a grpc\\+tls:// location"),
        ({"root_certificates": b"ca"}, "only used with verify_client=True"),
    ],
)
def test_tls_options_that_cannot_take_effect_are_refused(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        serve(finished_cache(), "grpc://127.0.0.1:0", **kwargs)


def test_root_certificates_without_verify_client_are_refused_over_tls(pki: Path) -> None:
    with pytest.raises(ValueError, match="only used with verify_client=True"):
        serve(
            finished_cache(),
            "grpc+tls://127.0.0.1:0",
            tls_certificates=[
                ((pki / "server.pem").read_bytes(), (pki / "server.key").read_bytes())
            ],
            root_certificates=(pki / "ca.pem").read_bytes(),
        )


# -- 3. unbounded tickets ------------------------------------------------------------


def test_a_huge_ticket_is_refused_before_it_is_decoded(
    start_server: Callable[..., CacheServer],
) -> None:
    cache = finished_cache()
    server = start_server(cache)
    # 4 MiB of a column list that would take minutes to turn into a schema.
    huge = {
        "kind": "get", "prefix": '{"columns": [', "middle": '"id", ', "count": 700_000,
        "suffix": '"id"]}',
    }  # fmt: skip
    descriptor = {"kind": "info", "command": '{"columns": [' + '"id", ' * 5000 + '"id"]}'}
    ticket_result, descriptor_result, after = remote(
        server.location, huge, descriptor, {"kind": "get"}
    )
    assert ticket_result["error_type"] == "ArrowInvalid"
    assert first_line(ticket_result) == (
        "the ticket is 4,200,019 bytes, more than the 16,640 this server reads"
    )
    assert descriptor_result["error_type"] == "ArrowInvalid"
    assert "more than the 16,384 this server reads" in descriptor_result["error"]
    assert after == {"rows": 20}
    assert cache.stats.readers_created == 1


def test_without_credentials_a_huge_ticket_is_refused_unread(
    start_server: Callable[..., CacheServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(finished_cache(), token="a-token-of-some-length")
    huge = {"kind": "get", "prefix": "", "middle": "x", "count": 4 << 20, "suffix": ""}
    with caplog.at_level(logging.INFO, logger="batchcorder.flight"):
        (refused,) = remote(server.location, huge)
    assert refused["error_type"] == "FlightUnauthenticatedError"
    assert "do_get refused" not in caplog.text  # the handler never ran


def test_messages_quote_a_short_prefix_of_the_input(
    start_server: Callable[..., CacheServer],
) -> None:
    server = start_server(finished_cache())
    junk = "J" * 10_000
    results = remote(
        server.location,
        {"kind": "get", "ticket_text": junk},
        {"kind": "get", "ticket_text": json.dumps({"columns": ["K" * 5000]})},
        {"kind": "info", "path": ["P" * 5000]},
    )
    for result in results:
        assert result["error_type"] == "ArrowInvalid"
        assert len(first_line(result)) < 200
    assert "(10,000 bytes)" in first_line(results[0])


# -- 4. what a client learns ---------------------------------------------------------


def test_methods_the_server_does_not_offer_are_unimplemented_without_a_traceback(
    start_server: Callable[..., CacheServer],
) -> None:
    server = start_server(finished_cache())
    results = remote(server.location, {"kind": "action"}, {"kind": "put"}, {"kind": "exchange"})
    for result in results:
        assert result["error_type"] == "ArrowNotImplementedError"  # UNIMPLEMENTED
        assert_nothing_of_the_server_in(result["error"])
    assert [first_line(result) for result in results] == [
        "this server offers no actions",
        "this server is read-only: do_put is not offered",
        "this server does not offer do_exchange",
    ]


def test_schema_errors_are_invalid_arguments_without_the_servers_code(
    start_server: Callable[..., CacheServer],
) -> None:
    server = start_server(finished_cache())
    (refused,) = remote(server.location, {"kind": "schema", "command": '{"columns": ["nope"]}'})
    assert refused["error_type"] == "ArrowInvalid"
    assert first_line(refused).startswith("unknown column 'nope'")
    assert_nothing_of_the_server_in(refused["error"])


def test_a_cut_cache_file_is_reported_without_its_path(
    start_server: Callable[..., CacheServer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = StreamCache(
        CountingSource(make_batches(6)), disk_path=tmp_path, disk_capacity=1 << 24,
        memory_capacity=1,
    )  # fmt: skip
    cache.ingest_all()
    server = start_server(cache)
    disk_file = cache.disk_file
    assert disk_file is not None
    with disk_file.open("r+b") as file:
        file.truncate(10)
    with caplog.at_level(logging.INFO, logger="batchcorder.flight"):
        (failed,) = remote(server.location, {"kind": "get"})
    assert failed["error_type"] == "FlightServerError"
    assert "cache file was changed or cut" in failed["error"]
    assert str(tmp_path) not in failed["error"] and "Traceback" not in failed["error"]
    assert str(tmp_path) in caplog.text  # the details are in the server's log
    cache.close()


# -- 5. tickets and info that pretend ---------------------------------------------------


def test_ranges_outside_the_stream_are_invalid_arguments(
    start_server: Callable[..., CacheServer],
) -> None:
    server = start_server(finished_cache(4))
    results = remote(
        server.location,
        {"kind": "get", "ticket_text": '{"start": 4}'},
        {"kind": "get", "ticket_text": '{"start": 9, "stop": 12}'},
        {"kind": "get", "ticket_text": '{"start": 3, "stop": 2}'},
        {"kind": "get", "ticket_text": '{"start": 3, "stop": 10}'},
    )
    for result in results[:3]:
        assert result["error_type"] == "ArrowInvalid"
        assert result.get("rows", 0) == 0
    assert first_line(results[0]) == (
        "ticket 'start' (4) is beyond the end of the stream (4 batches)"
    )
    assert_nothing_of_the_server_in(results[0]["error"])
    assert first_line(results[2]) == "ticket 'stop' (2) is before its 'start' (3)"
    assert results[3] == {"rows": 5}  # a stop past the end is cut there, as a slice is


def test_a_ticket_of_another_cache_or_run_reads_nothing(
    start_server: Callable[..., CacheServer],
) -> None:
    first = start_server(finished_cache(4))
    second = start_server(finished_cache(4))
    (info,) = remote(first.location, {"kind": "info"})
    issued = info["tickets"][0]
    assert json.loads(issued)["cache"] == first.identity != second.identity
    mine, theirs = (
        remote(first.location, {"kind": "get", "ticket_text": issued}),
        remote(second.location, {"kind": "get", "ticket_text": issued}),
    )
    assert mine[0]["rows"] > 0
    assert theirs[0]["error_type"] == "ArrowInvalid"
    assert "issued for another cache or another run" in theirs[0]["error"]


def test_a_non_utf8_path_gets_an_error_not_data(start_server: Callable[..., CacheServer]) -> None:
    # gRPC's protobuf parser refuses a string field that is not UTF-8 before
    # pyarrow hands the call to the server: the client gets INTERNAL. A path
    # that parses but names no flight is an invalid argument.
    server = start_server(finished_cache())
    broken, unknown = remote(
        server.location, {"kind": "info", "path": ["\xff\xfe"]}, {"kind": "info", "path": ["x"]}
    )
    assert "error_type" in broken
    assert unknown["error_type"] == "ArrowInvalid"
    assert first_line(unknown) == "no flight at path ['x']: this server serves ['cache']"


# -- 6. credentials ----------------------------------------------------------------------


def test_basic_auth_hands_out_a_bearer_token(start_server: Callable[..., CacheServer]) -> None:
    server = start_server(
        finished_cache(), username="reader", password="a-long-password-1", token="static-token-16ch"
    )
    logged_in = remote(
        server.location,
        {"kind": "login", "user": "reader", "password": "a-long-password-1"},
        {"kind": "get"},
        {"kind": "info"},
    )
    assert logged_in[0] == {"login": "Bearer "}
    assert logged_in[1] == {"rows": 20}
    assert logged_in[2]["total_records"] == 20
    refused = remote(
        server.location,
        {"kind": "login", "user": "reader", "password": "wrong"},
        {"kind": "get"},
        {"kind": "get", "token": "forged-session-token"},
    )
    assert [result["error_type"] for result in refused] == ["FlightUnauthenticatedError"] * 3
    assert "wrong user name or password" in refused[0]["error"]
    assert "log in with the Flight handshake" in refused[1]["error"]
    (static,) = remote(server.location, {"kind": "get", "token": "static-token-16ch"})
    assert static == {"rows": 20}


# -- 7. names ---------------------------------------------------------------------------


def test_a_wildcard_host_is_offered_as_addresses_clients_can_use() -> None:
    locations = client_locations("grpc://0.0.0.0:0", 8815)
    assert locations[0] == "grpc://127.0.0.1:8815"
    assert all("0.0.0.0" not in location for location in locations)
    assert client_locations("grpc://[::]:0", 8815)[0] == "grpc://[::1]:8815"
    assert client_locations("grpc://127.0.0.1:0", 8815) == ["grpc://127.0.0.1:8815"]


#: Reads one batch of the whole flight at argv[1], says so, then holds the call
#: open without reading until the file argv[2] exists (at most 60 s).
STALLED_CLIENT = r"""
import os, sys, time
from pyarrow import flight
client = flight.connect(sys.argv[1])
reader = client.do_get(flight.Ticket(b"{}"), flight.FlightCallOptions(timeout=120))
reader.read_chunk()
print("got one", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def test_close_names_a_client_that_stopped_reading(tmp_path: Path) -> None:
    # Batches of 8 MB: gRPC's buffers fill after a few, and the stream's
    # thread then waits in a write the client never takes.
    big = pa.table({"x": pa.array(range(1_000_000), pa.int64())})
    cache = StreamCache(pa.concat_tables([big] * 20).to_reader(max_chunksize=1_000_000))
    cache.ingest_all()
    server = serve(cache)
    release = tmp_path / "release"
    client = subprocess.Popen(
        [sys.executable, "-c", STALLED_CLIENT, server.location, str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "got one"
        steady = 0
        # Up to 2 minutes, until the stream has been stuck in a write for 20 checks.
        for _ in range(2400):
            steady = steady + 1 if "sending" in server._service.open_calls() else 0
            if steady >= 20:
                break
            time.sleep(0.05)
        assert steady >= 20
        with pytest.raises(TimeoutError, match=r"1 do_get stream.* sending a batch to a client"):
            server.close(timeout=0.5)
    finally:
        release.touch()
        client.communicate(timeout=TIMEOUT)
        server.close(timeout=TIMEOUT)
    assert server.closed
    cache.close()
