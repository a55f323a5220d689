"""``batchcorder query`` run as a real subprocess: sources, engines, formats, stats."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

THREE = [
    "SELECT count(*) AS n FROM src",
    "SELECT kind, count(*) AS n FROM src GROUP BY kind ORDER BY kind",
    "SELECT id, amount FROM src WHERE amount IS NOT NULL ORDER BY id LIMIT 2",
]


@pytest.mark.parametrize("engine", ["duckdb", "polars", "datafusion"])
def test_three_statements_over_piped_stream(cli, stream_bytes, engine):
    result = cli("query", "-", *THREE, "--engine", engine, "--stats", stdin=stream_bytes)
    assert result.returncode == 0, result.stderr
    blocks = result.text.split("\n\n")
    assert len(blocks) == 3
    assert "3000" in blocks[0] and blocks[0].endswith("(1 row)")
    assert [line.split() for line in blocks[1].splitlines()[2:5]] == [
        ["buy", "1000"],
        ["click", "1000"],
        ["view", "1000"],
    ]
    assert blocks[2].splitlines()[2].split() == ["2", "0.5"]
    # Standard input was read once, into the cache, and replayed three times.
    assert "ingest: 3,000 rows in 6 batches" in result.stderr
    assert "ingested_batches    6" in result.stderr
    assert "upstream_exhausted  true" in result.stderr
    assert "statement 3: 2 rows" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["parquet", "csv", "tsv", "arrow-file", "arrow-stream"])
def test_every_file_kind(cli, files, kind):
    result = cli(
        "query", files[kind], "SELECT count(*) AS n, sum(id) AS s FROM src", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.text) == {"n": 3000, "s": sum(range(3000))}


def test_table_format_aligns_and_truncates(cli, files):
    result = cli("query", files["parquet"], "SELECT id, kind FROM src ORDER BY id", "--max-rows", 3)
    assert result.returncode == 0, result.stderr
    lines = result.text.splitlines()
    assert lines[0].split() == ["id", "kind"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2:5] == [" 0  view", " 1  click", " 2  buy"]  # numbers align right
    assert lines[5] == "(3,000 rows, first 3 shown; --max-rows 0 shows all)"


def test_csv_format(cli, files):
    result = cli("query", files["arrow-file"], *THREE[1:], "--format", "csv")
    assert result.returncode == 0, result.stderr
    first, second = result.text.split("\n\n")
    assert first.splitlines() == ['"kind","n"', '"buy",1000', '"click",1000', '"view",1000']
    assert second.splitlines() == ['"id","amount"', "2,0.5", "5,1.25"]


def test_json_format_is_json_lines(cli, files):
    sql = "SELECT id, kind, amount, ts FROM src ORDER BY id LIMIT 3"
    result = cli("query", files["arrow-file"], sql, "SELECT 1 AS one", "--format", "json")
    assert result.returncode == 0, result.stderr
    first, second = result.text.split("\n\n")
    rows = [json.loads(line) for line in first.splitlines()]
    assert rows[0] == {"id": 0, "kind": "view", "amount": None, "ts": "1970-01-01T00:00:00+00:00"}
    assert rows[2]["amount"] == 0.5
    assert json.loads(second) == {"one": 1}


def test_arrow_format_writes_one_stream_per_statement(
    cli, files, streams_reader: Callable[[bytes], list[pa.Table]]
):
    result = cli("query", files["parquet"], *THREE, "--format", "arrow")
    assert result.returncode == 0, result.stderr
    tables = streams_reader(result.stdout)
    assert [table.num_rows for table in tables] == [1, 3, 2]
    assert tables[0].column("n").to_pylist() == [3000]
    assert tables[2].column("id").to_pylist() == [2, 5]


def test_arrow_output_pipes_into_another_query(cli, files):
    first = cli("query", files["csv"], "SELECT * FROM src WHERE kind = 'buy'", "--format", "arrow")
    assert first.returncode == 0, first.stderr
    second = cli("query", "-", "SELECT count(*) AS n FROM src", "-f", "json", stdin=first.stdout)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.text) == {"n": 1000}


def test_disk_mode_uses_and_removes_the_cache_file(cli, stream_bytes, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    result = cli(
        "query", "-", "SELECT max(id) AS m FROM src", "SELECT min(id) AS m FROM src",
        "--disk", cache_dir, "--disk-capacity", "64MiB", "--memory-capacity", "1KiB",
        "--stats", "--format", "csv",
        stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.text == '"m"\n2999\n\n"m"\n0\n'
    assert "disk_batches        6" in result.stderr
    assert not cache_dir.exists()  # the file is removed, and the folder the run made


def test_statement_without_result_prints_nothing(cli, files):
    result = cli(
        "query", files["parquet"],
        "CREATE VIEW buys AS SELECT * FROM src WHERE kind = 'buy'",
        "SELECT count(*) AS n FROM buys",
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.text) == {"n": 1000}


def test_quiet_memory_capacity_warning(cli, files):
    args = ("query", files["parquet"], "SELECT 1 AS x", "--memory-capacity", "1MB")
    loud = cli(*args)
    assert loud.returncode == 0
    assert loud.stderr == (
        "batchcorder: warning: --memory-capacity has no effect without --disk: "
        "a memory-only cache keeps every batch\n"
    )
    assert cli(*args, "--quiet").stderr == ""


def test_help_and_version(cli):
    result = cli("query", "--help")
    assert result.returncode == 0
    assert "--disk-capacity" in result.text and "Arrow IPC stream" in result.text
    version = cli("--version")
    assert version.returncode == 0
    assert version.text.startswith("batchcorder ")


def test_reader_going_away_is_not_an_error(files):
    """``batchcorder query ... | head -1``: no traceback when the pipe closes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "batchcorder", "query", files["parquet"], "SELECT * FROM src",
         "--format", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b'"id","kind","amount","ts"\n'
    process.stdout.close()
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""


@pytest.mark.parametrize("fmt", ["csv", "json", "arrow"])
@pytest.mark.parametrize("engine", ["duckdb", "polars", "datafusion"])
def test_every_engine_in_every_format(cli, stream_bytes, streams_reader, engine, fmt):
    sql = "SELECT kind, CAST(count(*) AS BIGINT) AS n FROM src GROUP BY kind ORDER BY kind"
    result = cli("query", "-", sql, sql, "--engine", engine, "--format", fmt, stdin=stream_bytes)
    assert result.returncode == 0, result.stderr
    expected = [{"kind": kind, "n": 1000} for kind in ("buy", "click", "view")]
    if fmt == "arrow":
        results = [table.to_pylist() for table in streams_reader(result.stdout)]
    elif fmt == "json":
        results = [
            [json.loads(line) for line in block.splitlines()] for block in result.text.split("\n\n")
        ]
    else:
        results = [list(csv.DictReader(io.StringIO(block))) for block in result.text.split("\n\n")]
        expected = [{"kind": row["kind"], "n": "1000"} for row in expected]
    assert results == [expected, expected]
