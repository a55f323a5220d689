"""Bad input: one line on standard error, exit status 2, no traceback (unless --debug).

Run in-process through ``main`` (fast), but for ``--debug``, which lets the
traceback out of the process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == b""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("batchcorder: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_file_type(command, tmp_path: Path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert_one_line_error(command("query", notes, "SELECT 1"), "unknown file type", "notes.txt")


def test_missing_file(command, tmp_path: Path):
    missing = tmp_path / "missing.parquet"
    assert_one_line_error(
        command("query", missing, "SELECT 1"), "cannot read", "No such file or directory"
    )


def test_directory(command, tmp_path: Path):
    assert_one_line_error(command("query", tmp_path, "SELECT 1"), "is a directory")


def test_corrupt_parquet(command, tmp_path: Path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not really parquet")
    assert_one_line_error(command("query", broken, "SELECT 1"), "cannot read", "as parquet")


def test_csv_that_breaks_half_way(command, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n" + "1,2\n" * 10 + "3\n")
    assert_one_line_error(command("query", bad, "SELECT 1"), "bad.csv", "Expected 2 columns")


def test_empty_standard_input(command):
    assert_one_line_error(command("query", "-", "SELECT 1"), "standard input", "empty")


def test_garbage_on_standard_input(command):
    result = command("query", "-", "SELECT 1", stdin=b"id,name\n1,x\n")
    assert_one_line_error(result, "standard input is not an Arrow IPC stream")


def test_stream_cut_off_half_way(command, stream_bytes):
    result = command("query", "-", "SELECT 1", stdin=stream_bytes[: len(stream_bytes) // 2])
    assert_one_line_error(result, "cannot read standard input")


def test_parquet_on_standard_input(command, files):
    result = command("query", "-", "SELECT 1", stdin=files["parquet"].read_bytes())
    assert_one_line_error(result, "Parquet file", "give its path")


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ("duckdb", 'Binder Error: Referenced column "nope" not found'),
        ("polars", 'unable to find column "nope"'),
        ("datafusion", "No field named nope"),
    ],
)
def test_sql_error_carries_the_engines_message(command, stream_bytes, engine, message):
    result = command(
        "query", "-", "SELECT count(*) FROM src", "SELECT nope FROM src", "--engine", engine,
        stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    # The first statement's result was written before the second failed.
    assert result.stdout.endswith(b"(1 row)\n")
    assert result.stderr.splitlines() == [
        result.stderr.splitlines()[0]
    ] and result.stderr.startswith(f"batchcorder: error: SQL statement 2 failed in {engine}: ")
    assert message in result.stderr


@pytest.mark.parametrize("option", ["--memory-capacity", "--disk-capacity"])
def test_size_that_does_not_parse(command, files, option):
    result = command("query", files["parquet"], "SELECT 1", option, "12XB")
    assert_one_line_error(result, f"argument {option}", "invalid size '12XB'", "512MB or 2GiB")


def test_disk_without_capacity(command, files, tmp_path: Path):
    result = command("query", files["parquet"], "SELECT 1", "--disk", tmp_path / "cache")
    assert_one_line_error(result, "--disk needs --disk-capacity")
    assert not (tmp_path / "cache").exists()


def test_capacity_without_disk(command, files):
    result = command("query", files["parquet"], "SELECT 1", "--disk-capacity", "1GiB")
    assert_one_line_error(result, "--disk-capacity needs --disk")


def test_disk_capacity_too_small(command, stream_bytes, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    result = command(
        "query", "-", "SELECT 1", "--disk", cache_dir, "--disk-capacity", "1KB", stdin=stream_bytes
    )
    assert_one_line_error(result, "outgrew --disk-capacity")
    assert not cache_dir.exists()


def test_usage_errors(command, files):
    assert_one_line_error(command("query", files["parquet"]), "required: SQL")
    assert_one_line_error(command("query", files["parquet"], "SELECT 1", "-e", "sqlite"), "sqlite")
    assert_one_line_error(command("frobnicate"), "invalid choice")
    assert command().returncode == 2  # no command: the help, on standard error


def test_debug_shows_the_traceback(cli, stream_bytes):
    result = cli("query", "-", "SELECT nope FROM src", "--debug", stdin=stream_bytes)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "CLIError: SQL statement 1 failed in duckdb" in result.stderr


def test_demo_refuses_a_capacity_without_disk(command):
    result = command("demo", "--rows", "10", "--disk-capacity", "1GiB")
    assert_one_line_error(result, "--disk-capacity needs --disk")


def test_disk_capacity_is_said_as_written(command, stream_bytes, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    result = command(
        "query", "-", "SELECT 1", "--disk", cache_dir, "--disk-capacity", "10kB", stdin=stream_bytes
    )
    assert_one_line_error(result, "outgrew --disk-capacity 10kB (10,000 bytes): ")


@pytest.mark.parametrize("engine", ["polars", "datafusion"])
def test_an_engine_that_is_not_installed_names_its_extra(command, files, monkeypatch, engine):
    monkeypatch.setitem(sys.modules, engine, None)  # importing it raises ImportError
    result = command("query", files["parquet"], "SELECT 1", "-e", engine)
    assert result.returncode != 0
    assert result.stdout == b""
    (line,) = result.stderr.splitlines()
    assert f"pip install 'batchcorder[{engine}]'" in line


def test_demo_refuses_an_engine_named_twice(command):
    assert_one_line_error(command("demo", "--rows", "10", "--engines", "duckdb,duckdb"), "once")
