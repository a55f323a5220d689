"""Shared fixtures of the command-line tests: small data files and a runner."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

ROWS = 3_000
BATCH_ROWS = 500
#: Every subprocess must finish within this many seconds.
TIMEOUT = 60


@dataclass
class Result:
    """What one run of the command did."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode()


Runner = Callable[..., Result]


def events_table() -> pa.Table:
    """A small deterministic table: ids, a category, a nullable float, a timestamp."""
    ids = list(range(ROWS))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "kind": pa.array([("view", "click", "buy")[i % 3] for i in ids]),
            "amount": pa.array([i / 4 if i % 3 == 2 else None for i in ids], pa.float64()),
            "ts": pa.array([i * 1000 for i in ids], pa.timestamp("ms", tz="UTC")),
        }
    )


def ipc_stream_bytes(table: pa.Table, batch_rows: int = BATCH_ROWS) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=batch_rows)
    return sink.getvalue().to_pybytes()


def read_streams(data: bytes) -> list[pa.Table]:
    """Read back-to-back Arrow IPC streams, as ``--format arrow`` writes them."""
    source = pa.BufferReader(data)
    tables = []
    while source.tell() < len(data):
        tables.append(pa.ipc.open_stream(source).read_all())
    return tables


@pytest.fixture(scope="session")
def events() -> pa.Table:
    return events_table()


@pytest.fixture(scope="session")
def stream_bytes(events: pa.Table) -> bytes:
    return ipc_stream_bytes(events)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory, events: pa.Table) -> dict[str, Path]:
    """The events as a Parquet, CSV, TSV, Arrow IPC file and Arrow IPC stream file."""
    folder = tmp_path_factory.mktemp("sources")
    paths = {
        "parquet": folder / "events.parquet",
        "csv": folder / "events.csv",
        "tsv": folder / "events.tsv",
        "arrow-file": folder / "events.arrow",
        "arrow-stream": folder / "events.arrows",
    }
    pq.write_table(events, paths["parquet"], row_group_size=BATCH_ROWS)
    pa_csv.write_csv(events, paths["csv"])
    pa_csv.write_csv(events, paths["tsv"], pa_csv.WriteOptions(delimiter="\t"))
    with pa.ipc.new_file(paths["arrow-file"], events.schema) as writer:
        writer.write_table(events, max_chunksize=BATCH_ROWS)
    paths["arrow-stream"].write_bytes(ipc_stream_bytes(events))
    return paths


def run_command(
    command: list[str], *args: object, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run ``command args...`` with standard input from ``stdin`` (else empty)."""
    completed = subprocess.run(
        [*command, *map(str, args)],
        input=b"" if stdin is None else stdin,
        capture_output=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr.decode())


@pytest.fixture(scope="session")
def streams_reader() -> Callable[[bytes], list[pa.Table]]:
    """:func:`read_streams`, for test modules (which cannot import this conftest)."""
    return read_streams


@pytest.fixture(scope="session")
def to_stream() -> Callable[..., bytes]:
    """:func:`ipc_stream_bytes`, for test modules."""
    return ipc_stream_bytes


@pytest.fixture(scope="session")
def run() -> Callable[..., Result]:
    """:func:`run_command`: run any command line, e.g. the installed script."""
    return run_command


def run_in_process(*args: object, stdin: bytes | None = None) -> Result:
    """Run ``batchcorder ARGS...`` through ``main`` in this process, with its own streams."""
    from batchcorder._cli.main import main

    out, err = io.BytesIO(), io.StringIO()
    source = io.BufferedReader(io.BytesIO(b"" if stdin is None else stdin))
    status = main([str(arg) for arg in args], stdin=source, stdout=out, stderr=err)
    return Result(status, out.getvalue(), err.getvalue())


@pytest.fixture
def command() -> Runner:
    """:func:`run_in_process`: the command's ``main`` without a subprocess (fast)."""
    return run_in_process


@pytest.fixture
def cli() -> Runner:
    """Run ``python -m batchcorder ARGS...``; keyword ``stdin`` gives its input bytes."""

    def run(*args: object, stdin: bytes | None = None) -> Result:
        return run_command([sys.executable, "-m", "batchcorder"], *args, stdin=stdin)

    return run
