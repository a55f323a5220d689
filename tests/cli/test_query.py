"""``batchcorder query``: sources, engines, formats, stats; in-process, and as real processes."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from batchcorder._cli.main import EXIT_BROKEN_PIPE

THREE = [
    "SELECT count(*) AS n FROM src",
    "SELECT kind, count(*) AS n FROM src GROUP BY kind ORDER BY kind",
    "SELECT id, amount FROM src WHERE amount IS NOT NULL ORDER BY id LIMIT 2",
]


def check_three(text: str) -> None:
    blocks = text.split("\n\n")
    assert len(blocks) == 3
    assert "3000" in blocks[0] and blocks[0].endswith("(1 row)")
    assert [line.split() for line in blocks[1].splitlines()[2:5]] == [
        ["buy", "1000"],
        ["click", "1000"],
        ["view", "1000"],
    ]
    assert blocks[2].splitlines()[2].split() == ["2", "0.5"]


@pytest.mark.parametrize("engine", ["polars", "datafusion"])
def test_three_statements_over_a_stream(command, stream_bytes, engine):
    result = command("query", "-", *THREE, "--engine", engine, stdin=stream_bytes)
    assert result.returncode == 0, result.stderr
    check_three(result.text)


def test_three_statements_over_piped_stream_with_stats(cli, stream_bytes):
    result = cli("query", "-", *THREE, "--stats", stdin=stream_bytes)
    assert result.returncode == 0, result.stderr
    check_three(result.text)
    # Standard input was read once, into the cache, and replayed three times.
    assert "ingest: 3,000 rows in 6 batches" in result.stderr
    assert "ingested_batches    6" in result.stderr
    assert "upstream_exhausted  true" in result.stderr
    assert "statement 3: 2 rows" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["parquet", "csv", "tsv", "arrow-file", "arrow-stream"])
def test_every_file_kind(command, files, kind):
    result = command(
        "query", files[kind], "SELECT count(*) AS n, sum(id) AS s FROM src", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.text) == {"n": 3000, "s": sum(range(3000))}


def test_table_format_aligns_and_truncates(command, files):
    result = command(
        "query", files["parquet"], "SELECT id, kind FROM src ORDER BY id", "--max-rows", 3
    )
    assert result.returncode == 0, result.stderr
    lines = result.text.splitlines()
    assert lines[0].split() == ["id", "kind"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2:5] == [" 0  view", " 1  click", " 2  buy"]  # numbers align right
    assert lines[5] == "(3,000 rows, first 3 shown; --max-rows 0 shows all)"


def test_csv_format(command, files):
    result = command("query", files["arrow-file"], *THREE[1:], "--format", "csv")
    assert result.returncode == 0, result.stderr
    first, second = result.text.split("\n\n")
    assert first.splitlines() == ['"kind","n"', '"buy",1000', '"click",1000', '"view",1000']
    assert second.splitlines() == ['"id","amount"', "2,0.5", "5,1.25"]


def test_json_format_is_json_lines(command, files):
    sql = "SELECT id, kind, amount, ts FROM src ORDER BY id LIMIT 3"
    result = command("query", files["arrow-file"], sql, "SELECT 1 AS one", "--format", "json")
    assert result.returncode == 0, result.stderr
    first, second = result.text.split("\n\n")
    rows = [json.loads(line) for line in first.splitlines()]
    assert datetime.datetime.fromisoformat(rows[0].pop("ts")) == datetime.datetime(
        1970, 1, 1, tzinfo=datetime.timezone.utc
    )
    assert rows[0] == {"id": 0, "kind": "view", "amount": None}
    assert rows[2]["amount"] == 0.5
    assert json.loads(second) == {"one": 1}


def test_arrow_format_writes_one_stream_per_statement(
    command, files, streams_reader: Callable[[bytes], list[pa.Table]]
):
    result = command("query", files["parquet"], *THREE, "--format", "arrow")
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
    cache_dir = tmp_path / "made" / "cache"
    result = cli(
        "query", "-", "SELECT max(id) AS m FROM src", "SELECT min(id) AS m FROM src",
        "--disk", cache_dir, "--disk-capacity", "64MiB", "--memory-capacity", "1KiB",
        "--stats", "--format", "csv",
        stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.text == '"m"\n2999\n\n"m"\n0\n'
    assert "disk_batches        6" in result.stderr
    assert not (tmp_path / "made").exists()  # the file is removed, and the folders the run made


def test_options_between_statements(command, stream_bytes):
    result = command(
        "query", "-", "SELECT 1 AS a", "-e", "polars", "SELECT 2 AS b", "-f", "csv",
        "SELECT 3 AS c", stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.text == '"a"\n1\n\n"b"\n2\n\n"c"\n3\n'


def test_a_statement_starting_with_a_dash_after_double_dash(command, stream_bytes):
    result = command(
        "query", "-", "-f", "json", "--", "-- the count\nSELECT count(*) AS n FROM src",
        stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.text) == {"n": 3000}


def test_quiet_memory_capacity_warning(command, files):
    args = ("query", files["parquet"], "SELECT 1 AS x", "--memory-capacity", "1MB")
    loud = command(*args)
    assert loud.returncode == 0
    assert loud.stderr == (
        "batchcorder: warning: --memory-capacity has no effect without --disk: "
        "a memory-only cache keeps every batch\n"
    )
    assert command(*args, "--quiet").stderr == ""


def test_help_and_version(cli):
    result = cli("query", "--help")
    assert result.returncode == 0
    assert "--disk-capacity" in result.text and "Arrow IPC stream" in result.text
    version = cli("--version")
    assert version.returncode == 0
    assert version.text.startswith("batchcorder ")


def test_help_lists_each_command_once(cli):
    text = cli("--help").text
    listed = [
        line.split()[0] for line in text.splitlines() if line.startswith("  ") and line[2] != " "
    ]
    assert listed.count("query") == 1 and listed.count("demo") == 1, text
    assert "COMMAND\n" not in text and "commands:\n  query " in text


#: Far more output than a pipe holds, so that the writer meets the closed pipe.
BIG = "SELECT a.* FROM src a, src b WHERE b.id < 10"


@pytest.mark.parametrize("unbuffered", ["", "1"])
@pytest.mark.parametrize("fmt", ["table", "csv", "json", "arrow"])
def test_reader_going_away_exits_141(files, fmt, unbuffered):
    """``batchcorder query ... | head -1``: status 128 + SIGPIPE, no traceback, any format."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered  # sys.stdout.buffer is then a raw file
    process = subprocess.Popen(
        [sys.executable, "-m", "batchcorder", "query", files["parquet"], BIG, "-f", fmt,
         "--max-rows", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(8)
    process.stdout.close()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE == 141
    assert process.stderr.read() == b""


def test_csv_reads_back(command, files, events: pa.Table):
    result = command("query", files["parquet"], "SELECT * FROM src ORDER BY id", "-f", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert len(rows) == events.num_rows
    assert rows[2] == {"id": "2", "kind": "buy", "amount": "0.5", "ts": rows[2]["ts"]}
    assert rows[0]["amount"] == ""  # null
