"""DataFusion over a StreamCache: ``register`` (an in-memory table over the cache's zero-copy batches)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datafusion
import pyarrow as pa
import pytest

from batchcorder import StreamCache
from batchcorder.adapters import datafusion as bc_datafusion

QUERIES = [
    "SELECT * FROM t ORDER BY id",
    "SELECT id, s, dec, ts FROM t WHERE i < 0 AND s IS NOT NULL ORDER BY id",
    "SELECT s, count(*), count(i), min(ts), max(ts), sum(dec), max(array_length(l)), bool_or(b) "
    "FROM t GROUP BY s ORDER BY s NULLS FIRST",
    "SELECT count(*) FILTER (WHERE i IS NULL), count(*) FILTER (WHERE l IS NULL), "
    "count(*) FILTER (WHERE array_has(l, 2)) FROM t",
    # self-join
    "SELECT a.id, b.s FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.i > 30 ORDER BY a.id",
    # CTE referenced twice
    "WITH c AS (SELECT id, f FROM t WHERE f > 100) "
    "SELECT count(*), sum(x.f) FROM c x JOIN c y ON x.id = y.id - 1",
    # UNION of several filters of one table
    "SELECT id FROM t WHERE i < -5 UNION ALL SELECT id FROM t WHERE s = 's03' "
    "UNION ALL SELECT id FROM t WHERE ts < '2024-04-01T00:00:00+00:00' ORDER BY id",
    # two scalar subqueries: two concurrent scans
    "SELECT (SELECT count(*) FROM t WHERE b), (SELECT max(dec) FROM t)",
    # LIMIT
    "SELECT count(*) FROM (SELECT * FROM t LIMIT 5)",
    "SELECT id, l FROM t ORDER BY id DESC LIMIT 7",
]


def rows(ctx: datafusion.SessionContext, sql: str) -> list[dict[str, Any]]:
    """The result of ``sql`` as a list of rows."""
    return ctx.sql(sql).to_arrow_table().to_pylist()


def reference(table: pa.Table) -> datafusion.SessionContext:
    """A session where ``t`` is ``table``."""
    ctx = datafusion.SessionContext()
    ctx.register_table("t", ctx.from_arrow(table))
    return ctx


def test_every_query_shape_matches_a_table(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    ctx = datafusion.SessionContext()
    bc_datafusion.register(ctx, "t", cache)
    expected_ctx = reference(table)
    for sql in QUERIES:
        expected = rows(expected_ctx, sql)
        assert rows(ctx, sql) == expected, sql
        assert rows(ctx, sql) == expected, sql


def test_register_reads_the_cache_once(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table, max_readers=1)
    ctx = datafusion.SessionContext()
    frame = bc_datafusion.register(ctx, "t", cache)
    assert cache.upstream_exhausted
    for sql in QUERIES:
        ctx.sql(sql).collect()
    assert frame.count() == table.num_rows
    assert cache.stats.readers_created == 1


def test_register_schema_is_the_cache_schema(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    ctx = datafusion.SessionContext()
    bc_datafusion.register(ctx, "t", cache)
    assert ctx.table("t").schema() == reference(table).table("t").schema()


def test_empty_cache_gives_an_empty_table_with_the_schema(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table.schema.empty_table())
    ctx = datafusion.SessionContext()
    bc_datafusion.register(ctx, "t", cache)
    assert ctx.table("t").schema() == reference(table).table("t").schema()
    assert rows(ctx, "SELECT * FROM t") == []
    assert rows(ctx, "SELECT count(*) AS n FROM t a JOIN t b ON a.id = b.id") == [{"n": 0}]


def test_upstream_failure_raises_from_register(
    failing: Callable[[], pa.RecordBatchReader],
    upstream_message: str,
    make_cache: Callable[..., StreamCache],
) -> None:
    # Registration reads the whole cache, so the upstream's failure surfaces
    # there, with its own exception, before any collect().
    cache = make_cache(failing())
    ctx = datafusion.SessionContext()
    with pytest.raises(RuntimeError, match=upstream_message):
        bc_datafusion.register(ctx, "t", cache)
    assert not ctx.table_exist("t")


def test_disk_mode_registration_pins_no_memory(
    table: pa.Table, fresh_disk_cache: StreamCache
) -> None:
    cache = fresh_disk_cache
    before = pa.total_allocated_bytes()
    ctx = datafusion.SessionContext()
    bc_datafusion.register(ctx, "t", cache)
    assert rows(ctx, "SELECT count(*) AS n FROM t") == [{"n": table.num_rows}]
    # Pinning the upstream batches would hold all of table.nbytes.
    assert pa.total_allocated_bytes() - before < table.nbytes // 2


# -- pushdown, measured on the pages of the cache file --------------------------


def test_one_column_query_reads_only_that_column(
    wide_disk_cache: StreamCache, page_probe: Any
) -> None:
    ctx = datafusion.SessionContext()
    bc_datafusion.register(ctx, "t", wide_disk_cache)
    assert rows(ctx, "SELECT count(DISTINCT s2) AS n FROM t") == [{"n": 100_000}]
    touched = page_probe.touched()
    assert min(touched["s2"]) > 0.95
    for name in ("key", "s1", "f1", "f2", "f3"):
        assert max(touched[name]) == 0, name


def test_filter_skips_what_it_excludes(wide_disk_cache: StreamCache, page_probe: Any) -> None:
    ctx = datafusion.SessionContext()
    bc_datafusion.register(ctx, "t", wide_disk_cache)
    assert len(rows(ctx, "SELECT s2 FROM t WHERE key BETWEEN 50000 AND 50009")) == 10
    touched = page_probe.touched()
    assert min(touched["key"]) > 0.95
    assert max(touched["s2"][:5] + touched["s2"][6:]) == 0
    assert touched["s2"][5] < 0.05
    for name in ("s1", "f1", "f2", "f3"):
        assert max(touched[name]) == 0, name
