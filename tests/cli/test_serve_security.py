"""``batchcorder serve`` as a network service: failures, credentials and names.

The server is a ``batchcorder serve`` process, its clients other processes,
all over loopback; every wait is bounded by a timeout. A full file system
and the exposure checks are tested on the internal parts that word them.

Internal parts under test: ``batchcorder._cli.errors``, ``batchcorder._cli.serve``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import resource
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batchcorder._cli.errors import CLIError
from batchcorder._cli.serve import (
    _check_exposure,
    _file_system_error,
    _read_security,
    _say_where_else,
    no_space_message,
    too_large_message,
)

#: Seconds any one step may take.
TIMEOUT = 60

#: Writes ``argv[1]`` batches of 1000 rows to standard output; before batch
#: ``argv[2]`` it waits (bounded) for the file ``argv[3]`` to exist, then dies
#: without the end-of-stream marker.
PRODUCER = r"""
import os, sys, time
import pyarrow as pa
total, die_at, go = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
schema = pa.schema({"id": pa.int64()})
out = sys.stdout.buffer
writer = pa.ipc.new_stream(out, schema)
for index in range(total):
    if index == die_at:
        out.flush()
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(1)
    writer.write_batch(pa.record_batch([pa.array(range(index * 1000, (index + 1) * 1000))], schema=schema))
writer.close()
out.flush()
"""

#: Reads the whole flight at argv[1]; with argv[2], logs in with basic auth
#: (user, password) first. Prints rows or the error, as JSON. Says "reading"
#: once it has its first batch.
CLIENT = r"""
import json, sys
from pyarrow import flight
client = flight.connect(sys.argv[1])
headers = []
rows = 0
try:
    if len(sys.argv) > 3:
        headers.append(client.authenticate_basic_token(sys.argv[2], sys.argv[3]))
    options = flight.FlightCallOptions(timeout=50, headers=headers)
    for chunk in client.do_get(flight.Ticket(b"{}"), options):
        if rows == 0:
            print("reading", flush=True)
        rows += chunk.data.num_rows
    print(json.dumps({"rows": rows}), flush=True)
except Exception as error:
    print(json.dumps({"error_type": type(error).__name__, "error": str(error), "rows": rows}))
"""


def serve_command(*args: object, env: dict[str, str] | None = None, **popen: Any) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "batchcorder", "serve", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        **popen,
    )


def location_of(server: subprocess.Popen[bytes]) -> str:
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], TIMEOUT)
    assert ready, "batchcorder serve printed no location"
    return server.stdout.readline().decode().strip()


def readline_within(stream: Any) -> str:
    ready, _, _ = select.select([stream], [], [], TIMEOUT)
    assert ready, "no line in time"
    return str(stream.readline()).strip()


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=TIMEOUT)


# -- 1. a crashed producer -----------------------------------------------------------


def test_serve_tells_every_client_the_producer_died_and_exits_non_zero(tmp_path: Path) -> None:
    go = tmp_path / "die-now"
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, "100", "50", str(go)], stdout=subprocess.PIPE
    )
    server = serve_command("-", "-q", stdin=producer.stdout)
    assert producer.stdout is not None
    producer.stdout.close()
    try:
        location = location_of(server)
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, location], stdout=subprocess.PIPE, text=True
        )
        assert readline_within(client.stdout) == "reading"  # a live client
        go.touch()  # the producer dies after 50 of its 100 batches
        result = json.loads(client.communicate(timeout=TIMEOUT)[0])
        _, stderr = server.communicate(timeout=TIMEOUT)
    finally:
        stop(server)
        stop(client) if "client" in locals() else None
        producer.wait(TIMEOUT)
    assert "error_type" in result, result
    assert result["rows"] <= 50_000
    assert server.returncode != 0
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "ended after 50 batches without its end-of-stream marker" in lines[0]


# -- 6. credentials --------------------------------------------------------------------


def test_serve_refuses_a_short_token(files: dict[str, Path]) -> None:
    server = serve_command(files["parquet"], "--token-env", "BC_T", env={"BC_T": "s3cret"})
    _, stderr = server.communicate(timeout=TIMEOUT)
    assert server.returncode == 2
    assert "the secret has 6 characters; use at least 16" in stderr.decode()


def test_serve_refuses_credentials_in_clear_text_off_loopback(files: dict[str, Path]) -> None:
    # Refused before the server listens: nothing is bound to 0.0.0.0.
    token = "t" * 24
    server = serve_command(
        files["parquet"], "--host", "0.0.0.0", "--token-env", "BC_T", env={"BC_T": token}
    )
    _, stderr = server.communicate(timeout=TIMEOUT)
    assert server.returncode == 2
    message = stderr.decode()
    assert "would send the token in clear text" in message and "--allow-insecure" in message
    assert token not in message


def test_allow_insecure_warns() -> None:
    security = _read_security(None, None, None, (None, None, None))
    stderr = io.StringIO()
    _check_exposure("0.0.0.0", security, stderr, allow_insecure=False, quiet=False)
    assert "without --token-env or --username" in stderr.getvalue()
    os.environ["BC_TEST_SERVE_TOKEN"] = "x" * 20
    try:
        security = _read_security("BC_TEST_SERVE_TOKEN", None, None, (None, None, None))
    finally:
        del os.environ["BC_TEST_SERVE_TOKEN"]
    with pytest.raises(CLIError, match="clear text"):
        _check_exposure("10.1.2.3", security, io.StringIO(), allow_insecure=False, quiet=False)
    stderr = io.StringIO()
    _check_exposure("10.1.2.3", security, stderr, allow_insecure=True, quiet=False)
    assert "warning: --allow-insecure: the token travels in clear text" in stderr.getvalue()
    _check_exposure("127.0.0.1", security, io.StringIO(), allow_insecure=False, quiet=False)


def test_serve_logs_users_in_with_basic_auth(files: dict[str, Path]) -> None:
    password = "correct horse battery"
    server = serve_command(
        files["parquet"], "-q", "--username", "reader", "--password-env", "BC_P",
        env={"BC_P": password},
    )  # fmt: skip
    try:
        location = location_of(server)
        runs = [
            subprocess.run(
                [sys.executable, "-c", CLIENT, location, *credentials],
                capture_output=True, text=True, timeout=TIMEOUT, check=True,
            ).stdout.splitlines()[-1]
            for credentials in (["reader", password], ["reader", "wrong password!!"], [])
        ]  # fmt: skip
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=TIMEOUT)
    logged_in, wrong, anonymous = map(json.loads, runs)
    assert logged_in == {"rows": 3000}
    assert wrong["error_type"] == anonymous["error_type"] == "FlightUnauthenticatedError"
    assert server.returncode == 0


# -- 7. names ----------------------------------------------------------------------------


class _Listening:
    locations = ("grpc://127.0.0.1:8815", "grpc://myhost:8815", "grpc://10.1.2.3:8815")


def test_a_wildcard_host_names_the_addresses_clients_use() -> None:
    stderr = io.StringIO()
    _say_where_else(_Listening(), stderr, quiet=False)  # type: ignore[arg-type]
    assert stderr.getvalue() == (
        "batchcorder: other machines connect to grpc://myhost:8815, grpc://10.1.2.3:8815\n"
    )


def test_a_full_file_system_is_named(tmp_path: Path) -> None:
    error = _file_system_error(OSError(errno.ENOSPC, "No space left on device"), str(tmp_path))
    assert error is not None
    message = str(error)
    assert message == no_space_message(str(tmp_path))
    assert "the file system mounted at" in message and " free of " in message
    assert _file_system_error(OSError(errno.EIO, "I/O error"), str(tmp_path)) is None


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_a_file_size_limit_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    rows = 300_000
    source = tmp_path / "big.arrows"
    script = (
        "import pyarrow as pa, sys\n"
        f"t = pa.table({{'x': pa.array(range({rows}))}})\n"
        "with pa.OSFile(sys.argv[1], 'wb') as f, pa.ipc.new_stream(f, t.schema) as w:\n"
        "    w.write_table(t, max_chunksize=10_000)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(source)], check=True, timeout=TIMEOUT)
    server = serve_command(
        source, "-q", "--disk", tmp_path / "cache", "--disk-capacity", "1GiB",
        "--memory-capacity", "1", preexec_fn=_small_file_limit,
    )  # fmt: skip
    try:
        _, stderr = server.communicate(timeout=TIMEOUT)
    finally:
        stop(server)
    message = stderr.decode()
    assert server.returncode == 2, message
    assert "reached this process's file size limit (ulimit -f: 1.0 MiB)" in message
    assert "limit" in too_large_message(str(tmp_path))
