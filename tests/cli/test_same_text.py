"""The same values print the same bytes from every engine, in every text format.

Engines hand back one value in different Arrow types: a Europe/Berlin
timestamp comes back in UTC from DuckDB and in Berlin time from Polars and
DataFusion, a duration as an interval from DuckDB, binary and lists as their
large kinds from Polars. The command renders the Arrow result once, by its
value, so none of that shows.

Internal parts under test: ``batchcorder._engines``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math

import pyarrow as pa
import pytest

from batchcorder._engines import SQL_ENGINES

ENGINES = SQL_ENGINES

_MOMENT = dt.datetime(2024, 3, 30, 23, 31, 48, 643367)


def values() -> pa.Table:
    """One row of each awkward kind, one row of nulls, one of specials."""
    zoned = _MOMENT.replace(tzinfo=dt.timezone.utc)
    return pa.table(
        {
            "id": [1, 2, 3],
            "naive": pa.array([_MOMENT, None, dt.datetime(1970, 1, 1)], pa.timestamp("us")),
            "berlin": pa.array([zoned, None, zoned], pa.timestamp("us", "Europe/Berlin")),
            "utc": pa.array([zoned, None, zoned], pa.timestamp("us", "UTC")),
            "whole_seconds": pa.array(
                [zoned.replace(microsecond=0), None, None], pa.timestamp("ms", "UTC")
            ),
            "date": [dt.date(2024, 3, 31), None, dt.date(1, 1, 1)],
            "span": pa.array(
                [dt.timedelta(days=1, hours=3, seconds=5.5), None, dt.timedelta(hours=-36)],
                pa.duration("us"),
            ),
            "price": pa.array(
                [decimal.Decimal("1.10"), None, decimal.Decimal("-0.05")], pa.decimal128(10, 2)
            ),
            "ratio": [1.5, None, math.nan],
            "limit": [math.inf, None, -math.inf],
            "blob": [b"\x00\xff", None, b""],
            "tags": [["a", None], None, []],
            "point": [
                {"at": _MOMENT, "price": decimal.Decimal("2.50"), "blob": b"\x01"},
                None,
                {"at": None, "price": None, "blob": None},
            ],
            "text": ["line\nbreak", None, ""],
            "flag": [True, None, False],
        }
    )


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_every_engine_prints_the_same_bytes(command, to_stream, fmt):
    stdin = to_stream(values())
    printed = {}
    for engine in ENGINES:
        result = command(
            "query", "-", "SELECT * FROM src ORDER BY id", "-e", engine, "-f", fmt, stdin=stdin
        )
        assert result.returncode == 0, (engine, result.stderr)
        printed[engine] = result.stdout
    assert printed["polars"] == printed["duckdb"]
    assert printed["datafusion"] == printed["duckdb"]
    # and what they print is the value, in UTC where it has a zone
    assert b"2024-03-30T23:31:48.643367Z" in printed["duckdb"]
    assert b"+0100" not in printed["duckdb"] and b"+0000" not in printed["duckdb"]
    assert b"P1DT3H0M5.5S" not in printed["duckdb"] and b"P1DT3H5.5S" in printed["duckdb"]
    assert b"-P1DT12H" in printed["duckdb"]


@pytest.mark.parametrize("engine", ["datafusion"])  # DuckDB refuses such a map itself
def test_a_map_whose_keys_are_one_json_key_prints_its_pairs(command, to_stream, engine):
    # 0.0 and -0.0 are one key of a dict: as a JSON object the map would lose a pair.
    keys = pa.array([0.0, -0.0], pa.float64())
    maps = pa.MapArray.from_arrays(pa.array([0, 2], pa.int32()), keys, pa.array(["pos", "neg"]))
    stream = to_stream(pa.table({"m": maps}))
    result = command("query", "-", "SELECT m FROM src", "-e", engine, "-f", "json", stdin=stream)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"m": [[0.0, "pos"], [-0.0, "neg"]]}


def test_a_map_keyed_by_lists_prints_its_pairs(command, to_stream):
    stream = to_stream(pa.table({"x": [1]}))
    result = command("query", "-", "SELECT MAP {[1]: 'a'} AS m", "-f", "json", stdin=stream)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"m": [[[1], "a"]]}


def test_whole_decimals_are_json_integers_at_any_depth(command, to_stream):
    stream = to_stream(pa.table({"x": [1]}))
    sql = (
        "SELECT 0::DECIMAL(38,0) AS a, -1::DECIMAL(38,0) AS b, 1.50::DECIMAL(10,2) AS c, "
        "[2::DECIMAL(38,0)] AS l"
    )
    result = command("query", "-", sql, "-f", "json", stdin=stream)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b'{"a": 0, "b": -1, "c": 1.5, "l": [2]}\n'
