"""Ctrl-C: exit status 130, one line, and the cache's files removed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

#: Long enough that no engine finishes before the interrupt.
SLOW_SQL = (
    "SELECT sum(CAST(a.id AS DOUBLE) * b.id * c.id) FROM src a, src b, src c "
    "WHERE a.id + b.id + c.id > 5"
)


def wait_for_cache_file(folder: Path, process: subprocess.Popen[bytes]) -> list[Path]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and any(folder.iterdir()):
            return list(folder.iterdir())
        time.sleep(0.02)
    raise AssertionError(f"no cache file appeared in {folder}")


def interrupt(process: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> tuple[int, str]:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr.decode()


def start(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchcorder", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_while_reading_standard_input(tmp_path: Path, signum: int, status: int):
    cache_dir = tmp_path / "cache"
    process = start(
        "query", "-", "SELECT count(*) FROM src", "--disk", cache_dir, "--disk-capacity", "1GiB"
    )
    assert process.stdin is not None
    table = pa.table({"x": list(range(1000))})
    writer = pa.ipc.new_stream(process.stdin, table.schema)
    writer.write_table(table)  # and then nothing more: the stream stays open
    process.stdin.flush()
    wait_for_cache_file(cache_dir, process)
    assert interrupt(process, signum) == (status, "batchcorder: interrupted\n")
    assert not cache_dir.exists()
    process.stdin.close()


@pytest.mark.parametrize("engine", ["duckdb", "datafusion"])
def test_ctrl_c_during_a_long_query(files, tmp_path: Path, engine: str):
    cache_dir = tmp_path / "cache"
    process = start(
        "query", files["parquet"], SLOW_SQL, "--engine", engine,
        "--disk", cache_dir, "--disk-capacity", "1GiB",
    )  # fmt: skip
    wait_for_cache_file(cache_dir, process)
    time.sleep(1.0)  # ingested and registered: the query is running
    assert process.poll() is None
    status, stderr = interrupt(process)
    assert (status, stderr) == (130, "batchcorder: interrupted\n")
    assert not cache_dir.exists()
