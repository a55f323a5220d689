"""Faults under ``batchcorder serve``: no client ever takes a short stream for the whole.

A producer killed at a random batch (on standard input, or leaving a cut
file behind) must fail every client's read; a server killed mid-stream must
fail its clients' reads too. Clients are processes of their own over
loopback; every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: Seconds any one step may take.
TIMEOUT = 60

#: Batches the producer means to write (1000 rows each).
TOTAL_BATCHES = 200

#: Writes TOTAL_BATCHES batches to argv[2] ("-": standard output), a little
#: apart, and kills itself with SIGKILL before batch argv[1].
PRODUCER = r"""
import os, signal, sys, time
import pyarrow as pa
import pyarrow.compute  # pyarrow 18 does not import it with pyarrow
total, kill_at, target = int(sys.argv[3]), int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer if target == "-" else open(target, "wb")
schema = pa.schema({"id": pa.int64(), "twice": pa.int64()})
writer = pa.ipc.new_stream(out, schema)
for index in range(total):
    if index == kill_at:
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    ids = pa.array(range(index * 1000, (index + 1) * 1000), pa.int64())
    writer.write_batch(pa.record_batch([ids, pa.compute.multiply(ids, 2)], schema=schema))
    time.sleep(0.002)
writer.close()
out.flush()
"""

#: Reads the whole flight at argv[1]; prints its rows, or the error, as JSON.
CLIENT = r"""
import json, sys
from pyarrow import flight
rows = 0
try:
    client = flight.connect(sys.argv[1])
    for chunk in client.do_get(flight.Ticket(b"{}"), flight.FlightCallOptions(timeout=50)):
        rows += chunk.data.num_rows
        if rows == 1000:
            print("reading", flush=True)
    print(json.dumps({"rows": rows}), flush=True)
except Exception as error:
    print(json.dumps({"error_type": type(error).__name__, "rows": rows}), flush=True)
"""

CLIENTS = 3


def producer(
    kill_at: int, target: str, total: int = TOTAL_BATCHES, **popen: Any
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(kill_at), target, str(total)], **popen
    )


def serve(source: str, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchcorder", "serve", source, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def location_of(server: subprocess.Popen[bytes]) -> str:
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], TIMEOUT)
    assert ready, "batchcorder serve printed no location"
    return server.stdout.readline().decode().strip()


def clients(location: str) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, location], stdout=subprocess.PIPE, text=True
        )
        for _ in range(CLIENTS)
    ]


def outcome(client: subprocess.Popen[str]) -> dict[str, Any]:
    """The client's final line, as JSON (it may say "reading" first)."""
    stdout, _ = client.communicate(timeout=TIMEOUT)
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def assert_no_short_success(results: list[dict[str, Any]], kill_at: int) -> None:
    for result in results:
        assert "error_type" in result, f"a client read {result['rows']} rows as a whole stream"
        assert result["rows"] <= kill_at * 1000


def reap(*processes: subprocess.Popen[Any]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=TIMEOUT)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_producer_killed_on_stdin_fails_every_client(seed: int) -> None:
    kill_at = random.Random(seed).randrange(1, TOTAL_BATCHES)
    feeding = producer(kill_at, "-", stdout=subprocess.PIPE)
    server = serve("-", stdin=feeding.stdout)
    assert feeding.stdout is not None
    feeding.stdout.close()
    readers: list[subprocess.Popen[str]] = []
    try:
        readers = clients(location_of(server))
        results = [outcome(reader) for reader in readers]
        server.communicate(timeout=TIMEOUT)
        feeding.wait(TIMEOUT)
    finally:
        reap(server, feeding, *readers)
    assert feeding.returncode == -signal.SIGKILL
    assert server.returncode != 0
    assert_no_short_success(results, kill_at)


@pytest.mark.parametrize("seed", [4, 5])
def test_a_file_its_producer_was_killed_writing_fails_every_client(
    seed: int, tmp_path: Path
) -> None:
    kill_at = random.Random(seed).randrange(1, TOTAL_BATCHES)
    path = tmp_path / "cut.arrows"
    producer(kill_at, str(path)).wait(TIMEOUT)
    assert path.stat().st_size > 0
    server = serve(str(path))
    readers: list[subprocess.Popen[str]] = []
    try:
        readers = clients(location_of(server))
        results = [outcome(reader) for reader in readers]
        server.communicate(timeout=TIMEOUT)
    finally:
        reap(server, *readers)
    assert server.returncode != 0
    assert_no_short_success(results, kill_at)


def test_a_killed_server_fails_its_clients(tmp_path: Path) -> None:
    # The producer does not end while the test runs (a batch every 2 ms for
    # hours): the clients are mid-stream, reading live, when the server dies.
    feeding = producer(10**9, "-", total=10**7, stdout=subprocess.PIPE)
    server = serve("-", stdin=feeding.stdout)
    assert feeding.stdout is not None
    feeding.stdout.close()
    readers: list[subprocess.Popen[str]] = []
    try:
        readers = clients(location_of(server))
        for reader in readers:
            assert reader.stdout is not None
            ready, _, _ = select.select([reader.stdout], [], [], TIMEOUT)
            assert ready and reader.stdout.readline().strip() == "reading"
        os.kill(server.pid, signal.SIGKILL)
        results = [outcome(reader) for reader in readers]
    finally:
        reap(server, feeding, *readers)
    for result in results:
        assert "error_type" in result, result
