"""``batchcorder serve``: a source served over Arrow Flight (loopback) until Ctrl-C."""

from __future__ import annotations

import io
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyarrow import flight

from batchcorder._cli.main import main

#: Seconds any one step of these tests may take.
TIMEOUT = 60
OPTIONS = flight.FlightCallOptions(timeout=TIMEOUT)
WHOLE = flight.Ticket(b"{}")


class Server:
    """A ``batchcorder serve`` process and the location it printed."""

    def __init__(self, *args: object, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batchcorder", "serve", *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.location = ""

    def wait_for_location(self) -> Server:
        """Read the location, the first line of standard output."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], TIMEOUT)
        if not ready:
            self.process.kill()
            raise AssertionError("batchcorder serve printed no location")
        self.location = stdout.readline().decode().strip()
        return self

    def client(self) -> flight.FlightClient:
        return flight.connect(self.location)

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send ``signum``; return the exit status, the rest of stdout and stderr."""
        self.process.send_signal(signum)
        return self.finish()

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.stdin = None  # closed: communicate() must not flush it

    def finish(self) -> tuple[int, str, str]:
        try:
            stdout, stderr = self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers started by a test; any still running afterwards is killed."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate(timeout=TIMEOUT)


def wait_for_stats(server: Server, rows: int) -> flight.FlightInfo:
    """Wait until the server's flight info says ``rows`` rows are cached."""
    client = server.client()
    deadline = time.monotonic() + TIMEOUT
    while True:
        info = client.get_flight_info(flight.FlightDescriptor.for_path("cache"), OPTIONS)
        if info.total_records == rows or time.monotonic() > deadline:
            return info
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_a_file_until_ctrl_c(
    files: dict[str, Path], events: pa.Table, tmp_path: Path, servers: list[Server], signum: int
) -> None:
    cache_dir = tmp_path / "cache"
    server = Server(files["arrow-file"], "--disk", cache_dir, "--disk-capacity", "1GiB")
    servers.append(server.wait_for_location())
    assert server.location.startswith("grpc://127.0.0.1:")
    info = wait_for_stats(server, events.num_rows)
    assert info.total_records == events.num_rows
    assert len(info.endpoints) == 4
    client = server.client()
    parts = [client.do_get(endpoint.ticket, OPTIONS).read_all() for endpoint in info.endpoints]
    assert pa.concat_tables(parts).equals(events)
    assert client.do_get(WHOLE, OPTIONS).read_all().equals(events)
    assert len(list(cache_dir.iterdir())) == 1
    status, stdout, stderr = server.stop(signum)
    assert (status, stdout) == (0, "")
    assert stderr == (
        f"batchcorder: serving 3,000 rows in 6 batches as 'cache' at {server.location}; "
        "Ctrl-C to stop\nbatchcorder: server stopped\n"
    )
    assert not cache_dir.exists()


def test_serve_standard_input_while_it_is_read(
    events: pa.Table, servers: list[Server], to_stream
) -> None:
    server = Server("-", "--quiet", "--name", "events")
    servers.append(server)
    stdin = server.process.stdin
    assert stdin is not None
    writer = pa.ipc.new_stream(stdin, events.schema)
    batches = events.to_batches(max_chunksize=500)
    for batch in batches[:3]:
        writer.write_batch(batch)
    stdin.flush()
    server.wait_for_location()  # printed once the stream's schema has arrived
    # A client reads the first three batches while standard input is still open.
    stream = server.client().do_get(WHOLE, OPTIONS)
    received = [stream.read_chunk().data for _ in range(3)]
    assert pa.Table.from_batches(received).equals(pa.Table.from_batches(batches[:3]))
    rest: list[pa.Table] = []
    reading = threading.Thread(target=lambda: rest.append(stream.read_all()))
    reading.start()
    for batch in batches[3:]:
        writer.write_batch(batch)
    writer.close()
    server.close_stdin()
    reading.join(TIMEOUT)
    assert pa.concat_tables([pa.Table.from_batches(received), *rest]).equals(events)
    info = server.client().get_flight_info(flight.FlightDescriptor.for_path("events"), OPTIONS)
    assert info.total_records == events.num_rows
    assert server.stop() == (0, "", "")


def test_serve_with_a_token_refuses_calls_without_it(
    files: dict[str, Path], servers: list[Server]
) -> None:
    server = Server(files["parquet"], "-q", "--token-env", "BC_TEST_TOKEN", env={
        "BC_TEST_TOKEN": "s3cret-s3cret-s3cret"
    })  # fmt: skip
    servers.append(server.wait_for_location())
    client = server.client()
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.do_get(WHOLE, OPTIONS).read_all()
    options = flight.FlightCallOptions(
        timeout=TIMEOUT, headers=[(b"authorization", b"Bearer s3cret-s3cret-s3cret")]
    )
    assert client.do_get(WHOLE, options).read_all().num_rows == 3000
    assert server.stop()[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no/such/file.parquet"], "cannot read 'no/such/file.parquet': No such file or directory"),
        (["-", "--token-env", "BC_UNSET_VARIABLE"], "the environment variable BC_UNSET_VARIABLE is not set"),
        (["-", "--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["-", "--username", "reader"], "--username and --password-env go together"),
        (["-", "--tls-client-ca", "ca.pem"], "--tls-client-ca (mutual TLS) needs --tls-cert"),
        (["-", "--port", "70000"], "a port is between 0 and 65535, got 70000"),
        (["-", "--disk", "somewhere"], "--disk needs --disk-capacity"),
    ],
)  # fmt: skip
def test_serve_reports_bad_input_in_one_line(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRPC_VERBOSITY", "NONE")  # what the command sets for itself
    stdout, stderr = io.BytesIO(), io.StringIO()
    status = main(["serve", *args], stdin=io.BytesIO(), stdout=stdout, stderr=stderr)
    assert (status, stdout.getvalue()) == (2, b"")
    assert stderr.getvalue().startswith("batchcorder: error: ")
    assert message in stderr.getvalue()
    assert stderr.getvalue().count("\n") == 1


def test_serve_reports_a_port_in_use(files: dict[str, Path], cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", files["parquet"], "--port", port)
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr == (
        f"batchcorder: error: cannot listen on grpc://127.0.0.1:{port}: Address already in use\n"
    )


def test_serve_reports_a_source_that_breaks_after_the_location(
    stream_bytes: bytes, servers: list[Server]
) -> None:
    server = Server("-")
    servers.append(server)
    assert server.process.stdin is not None
    server.process.stdin.write(stream_bytes[: len(stream_bytes) // 2])
    server.close_stdin()
    server.wait_for_location()
    status, stdout, stderr = server.finish()
    assert (status, stdout) == (2, "")
    assert stderr.startswith("batchcorder: error: cannot read standard input")
    assert stderr.count("\n") == 1
