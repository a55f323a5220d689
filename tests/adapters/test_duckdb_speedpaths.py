"""DuckDB through ``batchcorder.register``: the streaming scan and the batches a filter skips.

The default registration is reached with no option: unfiltered scans stream
the batches (no statistics are computed), a filter DuckDB pushes down skips
the batches whose statistics exclude it, and every answer is DuckDB's answer
over the same ``pa.Table``. The differential tests (``tests/differential``)
compare the same path on generated data and queries.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import MODES, mode_kwargs

import batchcorder
from batchcorder import StreamCache
from batchcorder.adapters import duckdb as bc_duckdb

START = dt.datetime(2024, 1, 1)
ROWS, BATCH_ROWS = 4_000, 200


def events() -> pa.Table:
    """Time-ordered events: ``ts`` grows row by row; nulls and NaN in ``f``; a dictionary column."""
    return pa.table(
        {
            "ts": pa.array(
                [START + dt.timedelta(seconds=n) for n in range(ROWS)], pa.timestamp("us")
            ),
            "k": pa.array([n % 7 for n in range(ROWS)], pa.int16()),
            "f": pa.array(
                [None if n % 11 == 0 else math.nan if n % 13 == 0 else n / 4 for n in range(ROWS)]
            ),
            "s": pa.array([f"s{n % 17:02d}" for n in range(ROWS)]),
            "cat": pa.array(
                [["red", "green", None][n % 3] for n in range(ROWS)]
            ).dictionary_encode(),
        }
    )


def _cache(table: pa.Table, mode: str, tmp_path: Path) -> StreamCache:
    return StreamCache(table.to_reader(max_chunksize=BATCH_ROWS), **mode_kwargs(mode, tmp_path))


def _answers(sql: str, table: pa.Table, cache: object) -> tuple[list, list]:
    con = duckdb.connect()
    con.register("t", table)
    expected = con.sql(sql).fetchall()
    con = duckdb.connect()
    batchcorder.register(con, "t", cache)
    return expected, con.sql(sql).fetchall()


FULL_SCANS = [
    "SELECT count(*) FROM t",
    "SELECT sum(f), count(f), min(ts), max(s) FROM t",
    "SELECT s, count(*), sum(k) FROM t GROUP BY s ORDER BY s",
    "SELECT cat, count(*) FROM t GROUP BY cat ORDER BY cat NULLS FIRST",
    "SELECT * FROM t ORDER BY ts DESC LIMIT 3",
]


@pytest.mark.parametrize("mode", MODES)
def test_unfiltered_scans_stream_and_compute_no_statistics(mode: str, tmp_path: Path) -> None:
    table = events()
    cache = _cache(table, mode, tmp_path)
    for sql in FULL_SCANS:
        expected, got = _answers(sql, table, cache)
        assert got == expected or repr(got) == repr(expected), sql
    assert cache.statistics.columns == []


FILTERS = [
    # 1% of the rows by a range of the clustered column
    "SELECT count(*), sum(k) FROM t WHERE ts >= TIMESTAMP '2024-01-01 00:30:00' "
    "AND ts < TIMESTAMP '2024-01-01 00:30:40'",
    "SELECT s, count(*) FROM t WHERE ts > TIMESTAMP '2024-01-01 01:00:00' GROUP BY s ORDER BY s",
    "SELECT count(*) FROM t WHERE ts < TIMESTAMP '2023-01-01'",  # no batch at all
    "SELECT count(*) FROM t WHERE ts IS NULL OR k = 3",
    "SELECT ts, s FROM t WHERE k IN (2, 5) AND ts <= TIMESTAMP '2024-01-01 00:02:00' ORDER BY ts",
    "SELECT count(*) FROM t WHERE f = 2.0",  # NaN and nulls in f
    "SELECT count(*) FROM t WHERE cat = 'green' AND ts >= TIMESTAMP '2024-01-01 00:50:00'",
    "SELECT count(*) FROM t WHERE s <> 's03' AND ts BETWEEN TIMESTAMP '2024-01-01 00:10:00' "
    "AND TIMESTAMP '2024-01-01 00:12:00'",
    "SELECT a.ts, b.s FROM t a JOIN t b ON a.ts = b.ts "
    "WHERE a.ts < TIMESTAMP '2024-01-01 00:00:05' AND b.k > 1 ORDER BY a.ts",
]


@pytest.mark.parametrize("mode", MODES)
def test_filters_skip_batches_and_answer_as_over_the_table(mode: str, tmp_path: Path) -> None:
    table = events()
    cache = _cache(table, mode, tmp_path)
    for sql in FILTERS:
        expected, got = _answers(sql, table, cache)
        assert got == expected, sql
    # DuckDB pushed the filters into the scan: the cache computed the
    # statistics of the columns they read, and of no other.
    assert set(cache.statistics.columns) <= {"ts", "k", "f", "cat", "s"}
    assert "ts" in cache.statistics.columns


def test_a_range_on_the_clustered_column_reads_few_batches() -> None:
    table = events()
    cache = StreamCache(table.to_reader(max_chunksize=BATCH_ROWS))
    data = bc_duckdb.dataset(cache)
    low = pa.scalar(START + dt.timedelta(seconds=1_000), pa.timestamp("us"))
    high = pa.scalar(START + dt.timedelta(seconds=1_300), pa.timestamp("us"))
    where = (pc.field("ts") >= low) & (pc.field("ts") < high)
    selection = data.selection(where)
    assert selection is not None
    # 300 rows of 4,000, in batches of 200: batches 5 and 6, and 6 whole.
    assert selection.keep.nonzero()[0].tolist() == [5, 6]
    assert selection.whole.nonzero()[0].tolist() == [5]
    scan = data.scanner(columns=["k"], filter=where)
    assert scan.to_reader().read_all().num_rows == 300
    assert scan.count_rows() == 300  # the scan's other methods are a Scanner's


def test_a_cast_view_keeps_statistics_of_its_own(tmp_path: Path) -> None:
    table = events().select(["ts", "k"])
    cache = StreamCache(table.to_reader(max_chunksize=BATCH_ROWS))
    view = cache.cast(pa.schema([("ts", pa.timestamp("ms")), ("k", pa.int64())]))
    sql = "SELECT count(*), sum(k) FROM t WHERE k = 3 AND ts < TIMESTAMP '2024-01-01 00:20:00'"
    expected, got = _answers(sql, table, view)
    assert got == expected
    assert cache.statistics.columns == []  # the view's values are not the cache's


def test_a_filter_pyarrow_cannot_evaluate_is_left_to_it() -> None:
    # string_view columns: pyarrow (26) has no filter kernel for them, so a
    # filter that keeps part of a batch fails as over a plain dataset...
    table = pa.table({"x": range(10), "v": pa.array([str(n) for n in range(10)], pa.string_view())})
    cache = StreamCache(table.to_reader(max_chunksize=5))
    con = duckdb.connect()
    batchcorder.register(con, "t", cache)
    # ...but one that skips or keeps whole batches needs no filtering at all.
    assert con.sql("SELECT v FROM t WHERE x >= 5 ORDER BY x").fetchall() == [
        (str(n),) for n in range(5, 10)
    ]
    assert con.sql("SELECT count(v) FROM t WHERE x > 100").fetchall() == [(0,)]
