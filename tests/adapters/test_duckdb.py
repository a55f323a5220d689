"""DuckDB over a StreamCache: the lazy paths (replacement scan, ``con.register``) and the pushdown adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from batchcorder import StreamCache
from batchcorder.adapters import duckdb as bc_duckdb

SELF_JOIN = "SELECT a.id, b.s FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.i > 30 ORDER BY a.id"
#: A UNION of several filters of one table.
UNION_OF_THREE = (
    "SELECT id FROM t WHERE i < -5 UNION ALL SELECT id FROM t WHERE s = 's03' "
    "UNION ALL SELECT id FROM t WHERE ts < TIMESTAMPTZ '2024-04-01 00:00:00+00' ORDER BY id"
)
#: Two scalar subqueries: two concurrent scans of one table.
SCALAR_SUBQUERIES = "SELECT (SELECT count(*) FROM t WHERE b), (SELECT max(dec) FROM t)"

QUERIES = [
    "SELECT * FROM t ORDER BY id",
    "SELECT id, s, dec, ts FROM t WHERE i < 0 AND s IS NOT NULL ORDER BY id",
    "SELECT s, count(*), count(i), min(ts), max(ts), sum(dec), max(len(l)), bool_or(b) "
    "FROM t GROUP BY s ORDER BY s NULLS FIRST",
    "SELECT count(*) FILTER (WHERE i IS NULL), count(*) FILTER (WHERE l IS NULL), "
    "count(*) FILTER (WHERE list_contains(l, 2)) FROM t",
    SELF_JOIN,
    # ASOF join
    "SELECT a.id, b.id FROM t a ASOF JOIN (SELECT id FROM t WHERE i > 35) b ON a.id >= b.id "
    "ORDER BY a.id",
    # CTE referenced twice
    "WITH c AS (SELECT id, f FROM t WHERE f > 100) "
    "SELECT count(*), sum(x.f) FROM c x JOIN c y ON x.id = y.id - 1",
    UNION_OF_THREE,
    SCALAR_SUBQUERIES,
    # LIMIT
    "SELECT count(*) FROM (SELECT * FROM t LIMIT 5)",
    "SELECT id, l FROM t ORDER BY id DESC LIMIT 7",
]


def replacement_scan(t: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the default connection, which finds the argument ``t`` as a Python variable."""
    return duckdb.sql(sql).fetchall()


def registered(con: duckdb.DuckDBPyConnection) -> Callable[[Any, str], list[tuple[Any, ...]]]:
    """Run ``sql`` on ``con``, where ``t`` was registered once."""
    return lambda _t, sql: con.sql(sql).fetchall()


PATHS = ["replacement_scan", "con_register", "adapter_pushdown", "adapter_lazy"]


def setup_path(path: str, source: Any) -> Callable[[Any, str], list[tuple[Any, ...]]]:
    """Make ``source`` queryable as ``t`` along ``path``; return a runner of one query."""
    if path == "replacement_scan":
        return replacement_scan
    con = duckdb.connect()
    if path == "con_register":
        con.register("t", source)
    elif isinstance(source, pa.Table):
        # The reference for the adapter paths is the table registered directly.
        con.register("t", source)
    else:
        bc_duckdb.register(con, "t", source, pushdown=path == "adapter_pushdown")
    return registered(con)


@pytest.mark.parametrize("path", PATHS)
def test_every_query_shape_matches_a_table(
    path: str, table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    expected_run = setup_path(path, table)
    run = setup_path(path, cache)
    for sql in QUERIES:
        expected = expected_run(table, sql)
        # Twice: the same cache serves any number of queries.
        assert run(cache, sql) == expected, sql
        assert run(cache, sql) == expected, sql


def test_lazy_register_reads_nothing_and_takes_one_reader_per_scan(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    con = duckdb.connect()
    con.register("t", cache)
    assert con.sql("SELECT * FROM t").columns == table.schema.names
    assert cache.ingested_count == 0
    readers = []
    for sql in ["SELECT count(*) FROM t", SELF_JOIN, UNION_OF_THREE, SCALAR_SUBQUERIES]:
        before = cache.stats.readers_created
        con.sql(sql).fetchall()
        readers.append(cache.stats.readers_created - before)
    # A registered object is re-scanned: one reader per table reference.
    assert readers == [1, 2, 3, 2]


def test_replacement_scan_takes_one_reader_per_query(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    t = make_cache(table)
    readers = []
    for sql in ["SELECT count(*) FROM t", SELF_JOIN, UNION_OF_THREE, SCALAR_SUBQUERIES]:
        before = t.stats.readers_created
        duckdb.sql(sql).fetchall()
        readers.append(t.stats.readers_created - before)
    # A Python variable is read once per query; DuckDB buffers repeated scans.
    assert readers == [1, 1, 1, 1]


def test_adapter_reads_the_cache_once(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table, max_readers=1)
    con = duckdb.connect()
    relation = bc_duckdb.register(con, "t", cache)
    assert cache.upstream_exhausted
    for sql in QUERIES:
        con.sql(sql).fetchall()
    assert relation.aggregate("count(*)").fetchall() == [(table.num_rows,)]
    assert cache.stats.readers_created == 1


def test_limit_stops_the_lazy_scan_early(
    counting_upstream: Any, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(counting_upstream)
    t = cache
    assert len(duckdb.sql("SELECT id FROM t LIMIT 5").fetchall()) == 5
    assert t.ingested_count <= 2
    assert counting_upstream.pulled <= 2 < len(counting_upstream.batches)


@pytest.mark.parametrize("pushdown", [True, False])
def test_empty_cache_gives_an_empty_table_with_the_schema(
    pushdown: bool, table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table.schema.empty_table())
    con = duckdb.connect()
    relation = bc_duckdb.register(con, "t", cache, pushdown=pushdown)
    reference = duckdb.connect().from_arrow(table)
    assert relation.columns == reference.columns
    assert relation.types == reference.types
    assert con.sql("SELECT * FROM t").fetchall() == []
    assert con.sql("SELECT count(*) FROM t a JOIN t b USING (id)").fetchall() == [(0,)]


def test_lazy_path_upstream_failure_raises_from_fetchall(
    failing: Callable[[], pa.RecordBatchReader],
    upstream_message: str,
    make_cache: Callable[..., StreamCache],
) -> None:
    cache = make_cache(failing())
    con = duckdb.connect()
    con.register("t", cache)
    relation = con.sql("SELECT count(*) FROM t")
    with pytest.raises(duckdb.Error, match=upstream_message):
        relation.fetchall()
    # Every later query sees the same failure, not a short result.
    with pytest.raises(duckdb.Error, match=upstream_message):
        con.sql("SELECT * FROM t").fetchall()


def test_adapter_upstream_failure_raises_from_register(
    failing: Callable[[], pa.RecordBatchReader],
    upstream_message: str,
    make_cache: Callable[..., StreamCache],
) -> None:
    cache = make_cache(failing())
    with pytest.raises(RuntimeError, match=upstream_message):
        bc_duckdb.register(duckdb.connect(), "t", cache)


# -- pushdown, measured on the pages of the cache file --------------------------


def test_adapter_one_column_query_reads_only_that_column(
    wide_disk_cache: StreamCache, page_probe: Any
) -> None:
    con = duckdb.connect()
    bc_duckdb.register(con, "t", wide_disk_cache)
    assert con.sql("SELECT count(DISTINCT s2) FROM t").fetchall() == [(100_000,)]
    touched = page_probe.touched()
    assert min(touched["s2"]) > 0.95
    for name in ("key", "s1", "f1", "f2", "f3"):
        assert max(touched[name]) == 0, name


def test_adapter_filter_skips_what_it_excludes(
    wide_disk_cache: StreamCache, page_probe: Any
) -> None:
    con = duckdb.connect()
    bc_duckdb.register(con, "t", wide_disk_cache)
    rows = con.sql("SELECT s2 FROM t WHERE key BETWEEN 50000 AND 50009").fetchall()
    assert len(rows) == 10
    touched = page_probe.touched()
    # The filter column is read everywhere; of s2, only the pages of the ten
    # matching rows (all in batch 5), and of the other columns nothing.
    assert min(touched["key"]) > 0.95
    assert max(touched["s2"][:5] + touched["s2"][6:]) == 0
    assert touched["s2"][5] < 0.05
    for name in ("s1", "f1", "f2", "f3"):
        assert max(touched[name]) == 0, name


def test_lazy_path_converts_whole_projected_columns(
    wide_disk_cache: StreamCache, page_probe: Any
) -> None:
    # The control for the test above, and the reason the adapter exists: without
    # pushdown DuckDB receives every row of s2 and reads all of it.
    con = duckdb.connect()
    con.register("t", wide_disk_cache)
    rows = con.sql("SELECT s2 FROM t WHERE key BETWEEN 50000 AND 50009").fetchall()
    assert len(rows) == 10
    touched = page_probe.touched()
    assert min(touched["s2"]) > 0.95
    assert max(touched["s1"]) == 0


def test_disk_mode_registration_pins_no_memory(
    table: pa.Table, fresh_disk_cache: StreamCache
) -> None:
    cache = fresh_disk_cache
    before = pa.total_allocated_bytes()
    con = duckdb.connect()
    bc_duckdb.register(con, "t", cache)
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(table.num_rows,)]
    # Pinning the upstream batches would hold all of table.nbytes.
    assert pa.total_allocated_bytes() - before < table.nbytes // 2


def _twice_named() -> pa.Table:
    table = pa.Table.from_arrays(
        [pa.array([1, 2]), pa.array([3.0, 4.0]), pa.array([5, 6])], names=["x", "x", "y"]
    )
    return pa.Table.from_batches(table.to_batches(max_chunksize=1))


@pytest.mark.parametrize("pushdown", [True, False])
def test_columns_sharing_a_name_answer_as_over_the_table(pushdown: bool) -> None:
    table = _twice_named()
    over_table = duckdb.connect()
    over_table.register("t", table)
    con = duckdb.connect()
    bc_duckdb.register(con, "t", StreamCache(table), pushdown=pushdown)
    for sql in ("SELECT count(*) FROM t", "SELECT y FROM t WHERE y > 5", "SELECT * FROM t"):
        assert con.sql(sql).fetchall() == over_table.sql(sql).fetchall()


def test_a_dataset_of_columns_sharing_a_name_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"more than one column named 'x'.*pushdown=False"):
        bc_duckdb.dataset(StreamCache(_twice_named()))


@pytest.mark.parametrize("pushdown", [True, False])
def test_filters_on_struct_fields_answer_as_over_the_table(pushdown: bool) -> None:
    # DuckDB pushes st.a as a nested field reference, beside float columns whose
    # comparisons the dataset gives DuckDB's meaning (NaN above every number).
    table = pa.table(
        {
            "st": [{"a": 1, "g": 0.5}, {"a": 7, "g": float("nan")}, None, {"a": None, "g": 0.0}],
            "f": [0.5, 1.5, float("nan"), None],
        }
    )
    over_table = duckdb.connect()
    over_table.register("t", table)
    con = duckdb.connect()
    bc_duckdb.register(con, "t", StreamCache(table.to_reader(max_chunksize=2)), pushdown=pushdown)
    for where in (
        "st.a > 5",
        "st.g > 0.1",
        "st.g = 'NaN'::DOUBLE",
        "f > 3 AND st.a < 10",
        "st.a IS NULL",
        "st.g IN (0.0, 'NaN'::DOUBLE)",
    ):
        sql = f"SELECT st.a, f FROM t WHERE {where}"
        assert sorted(map(str, con.sql(sql).fetchall())) == sorted(
            map(str, over_table.sql(sql).fetchall())
        ), where
