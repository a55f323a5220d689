"""Polars over a StreamCache: ``scan`` (IO plugin LazyFrame) and ``register`` (SQLContext)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from batchcorder import StreamCache
from batchcorder.adapters import polars as bc_polars
from batchcorder.adapters.polars import _scan_batches, _Skipping

CUTOFF = pl.lit(dt.datetime(2024, 4, 1, tzinfo=dt.timezone.utc)).dt.convert_time_zone(
    "Europe/Paris"
)

#: LazyFrame queries, each a function of the frame (twice for self-joins and unions).
FRAME_QUERIES: dict[str, Callable[[pl.LazyFrame], pl.LazyFrame]] = {
    "all": lambda lf: lf,
    "filter_select": lambda lf: lf.filter((pl.col("i") < 0) & pl.col("s").is_not_null()).select(
        "id", "s", "dec", "ts"
    ),
    "with_columns": lambda lf: lf.with_columns(
        twice=pl.col("f") * 2, n=pl.col("l").list.len(), day=pl.col("ts").dt.date()
    ).select("id", "twice", "n", "day"),
    "typed_filters": lambda lf: lf.filter(
        (pl.col("ts") < CUTOFF) | (pl.col("dec") > Decimal("5")) | pl.col("l").list.contains(3)
    ),
    "null_filter": lambda lf: lf.filter(pl.col("i").is_null() | pl.col("b").is_null()).select("id"),
    "group_by": lambda lf: (
        lf.group_by("s")
        .agg(
            pl.len(),
            pl.col("i").count(),
            pl.col("ts").min(),
            pl.col("dec").sum(),
            pl.col("l").list.len().max(),
            pl.col("b").any(),
        )
        .sort("s", nulls_last=False)
    ),
    "self_join": lambda lf: (
        lf.join(lf.select(pl.col("id") + 1, "s"), on="id").filter(pl.col("i") > 30).sort("id")
    ),
    "union": lambda lf: pl.concat(
        [
            lf.filter(pl.col("i") < -5).select("id"),
            lf.filter(pl.col("s") == "s03").select("id"),
            lf.filter(pl.col("ts") < CUTOFF).select("id"),
        ]
    ),
    "head": lambda lf: lf.head(7),
    "slice": lambda lf: lf.slice(300, 20),
    "sort_tail": lambda lf: lf.sort("f", "id", nulls_last=True).tail(5),
    "count": lambda lf: lf.select(pl.len()),
    "filtered_count": lambda lf: lf.filter(pl.col("f") > 100).select(pl.len()),
}

SQL_QUERIES = [
    "SELECT * FROM t",
    "SELECT id, s, dec FROM t WHERE i < 0 AND s IS NOT NULL ORDER BY id",
    "SELECT s, count(*) AS n, min(ts) AS first_ts, sum(dec) AS d FROM t GROUP BY s "
    "ORDER BY s NULLS FIRST",
    # self-join
    "SELECT a.id, b.s FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.i > 30 ORDER BY a.id",
    # CTE referenced twice
    "WITH c AS (SELECT id, f FROM t WHERE f > 100) "
    "SELECT count(*) AS n, sum(x.f) AS total FROM c x JOIN c y ON x.id = y.id - 1",
    # UNION of several filters
    "SELECT id FROM t WHERE i < -5 UNION ALL SELECT id FROM t WHERE s = 's03' "
    "UNION ALL SELECT id FROM t WHERE b ORDER BY id",
    # two scalar subqueries
    "SELECT (SELECT count(*) FROM t WHERE b) AS n, (SELECT max(dec) FROM t) AS top",
    "SELECT * FROM t ORDER BY id LIMIT 5",
]


def test_frame_queries_match_a_table_and_recollect(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    lazy = bc_polars.scan(cache)
    reference = pl.from_arrow(table).lazy()
    for name, query in FRAME_QUERIES.items():
        frame = query(lazy)
        expected = query(reference).collect()
        # The same LazyFrame, collected twice: each collect replays the cache.
        assert_frame_equal(frame.collect(), expected, check_row_order=name != "union")
        assert_frame_equal(frame.collect(), expected, check_row_order=name != "union")


def test_sql_queries_match_a_table(table: pa.Table, make_cache: Callable[..., StreamCache]) -> None:
    cache = make_cache(table)
    ctx = pl.SQLContext()
    bc_polars.register(ctx, "t", cache)
    reference = pl.SQLContext(t=pl.from_arrow(table).lazy())
    for sql in SQL_QUERIES:
        expected = reference.execute(sql, eager=True)
        assert_frame_equal(ctx.execute(sql, eager=True), expected)
        assert_frame_equal(ctx.execute(sql, eager=True), expected)


#: Predicates a user can write that Polars pushes into the scan: a column used
#: several times, columns the query does not select, literals, null results.
PUSHED_PREDICATES: dict[str, pl.Expr] = {
    "range": (pl.col("i") >= -5) & (pl.col("i") < 5),
    "between": pl.col("id").is_between(100, 199),
    "column_three_times": ((pl.col("f") > 10) & (pl.col("f") < 200)) | (pl.col("f") == 0.25),
    "two_columns_each_twice": (pl.col("i") < pl.col("id")) & (pl.col("id") < 1000)
    | (pl.col("i") == 3),
    "unselected_column": pl.col("s") == "s03",
    "string_ops": pl.col("s").str.starts_with("s1") | pl.col("s").str.contains("2", literal=True),
    "is_in_and_not": pl.col("i").is_in([1, 2, 3]) & ~pl.col("b"),
    "null_results_drop_rows": pl.col("i") > 0,
    "all_horizontal": pl.all_horizontal(pl.col("i", "f", "s").is_not_null()),
    "literal_true": pl.lit(True),
    "literal_false": pl.lit(False),
    "literal_null": pl.lit(None, dtype=pl.Boolean),
    "scalar_expression": pl.lit(2) > pl.lit(1),
}


@pytest.mark.parametrize("name", PUSHED_PREDICATES)
def test_pushed_down_predicates_match_a_table(
    name: str, table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    predicate = PUSHED_PREDICATES[name]
    lazy = bc_polars.scan(make_cache(table))
    reference = pl.from_arrow(table).lazy()
    for query in (
        lambda lf: lf.filter(predicate),
        lambda lf: lf.filter(predicate).select("id", "ts"),
        lambda lf: lf.filter(predicate).select(pl.len()),
    ):
        expected = query(reference).collect()
        assert_frame_equal(query(lazy).collect(), expected)
        assert_frame_equal(query(lazy).collect(), expected)


@pytest.mark.parametrize(
    "where",
    [
        "i > -5 AND i < 5",
        "i BETWEEN -5 AND 5",
        "id >= 10 AND id < 20 AND s IS NOT NULL",
        "s LIKE 's0%' OR i = 3",
        "f > 100 AND NOT (f > 200) AND id <> 900",
    ],
)
def test_sql_range_predicates_match_a_table(
    where: str, table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    ctx = pl.SQLContext()
    bc_polars.register(ctx, "t", make_cache(table))
    reference = pl.SQLContext(t=pl.from_arrow(table).lazy())
    sql = f"SELECT id, s FROM t WHERE {where}"
    expected = reference.execute(sql, eager=True)
    assert expected.height > 0
    assert_frame_equal(ctx.execute(sql, eager=True), expected)
    assert_frame_equal(ctx.execute(sql, eager=True), expected)


def test_range_predicate_reaches_the_scan_once_per_column(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    # Polars hands the scan this predicate as it is: `root_names` lists `i` twice.
    predicate = (pl.col("i") >= -5) & (pl.col("i") < 5)
    assert predicate.meta.root_names() == ["i", "i"]
    frames = list(_scan_batches(cache, table.schema, ["id"], predicate, None, None))
    ids = pl.concat(frames)["id"].to_list()
    i = table.column("i").to_pylist()
    assert ids == [n for n in range(table.num_rows) if i[n] is not None and -5 <= i[n] < 5]


def test_head_then_filter_limits_rows_of_the_source(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    # Polars pushes both the slice and the filter of `head(n).filter(...)` into
    # the scan: the row limit counts rows of the source, before the filter.
    lazy = bc_polars.scan(make_cache(table))
    reference = pl.from_arrow(table).lazy()
    for query in (
        lambda lf: lf.head(300).filter(pl.col("i") > 30),
        lambda lf: lf.slice(0, 300).filter(pl.col("i") > 30).select("id"),
        lambda lf: lf.head(300).filter(pl.col("i") > 30).select(pl.len()),
    ):
        expected = query(reference).collect()
        assert_frame_equal(query(lazy).collect(), expected)
    ctx = pl.SQLContext()
    bc_polars.register(ctx, "t", make_cache(table))
    sql = "SELECT id FROM (SELECT * FROM t LIMIT 300) AS h WHERE i > 30"
    expected = pl.SQLContext(t=reference).execute(sql, eager=True)
    assert 0 < expected.height < 300
    assert_frame_equal(ctx.execute(sql, eager=True), expected)


def test_filters_string_view_columns(make_cache: Callable[..., StreamCache]) -> None:
    # pyarrow 26 cannot filter string_view; a selective filter still works.
    table = pa.table(
        {
            "id": pa.array(range(1000), pa.int64()),
            "v": pa.array([None if n % 9 == 0 else f"v{n}" for n in range(1000)], pa.string_view()),
        }
    )
    lazy = bc_polars.scan(make_cache(table))
    reference = pl.from_arrow(table).lazy()
    for predicate in (pl.col("id") == 5, pl.col("id") < 600, pl.col("v") == "v7"):
        expected = reference.filter(predicate).collect()
        assert_frame_equal(lazy.filter(predicate).collect(), expected)


def test_scan_reads_nothing_and_takes_one_reader_per_scan_node(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    lazy = bc_polars.scan(cache)
    ctx = pl.SQLContext()
    bc_polars.register(ctx, "t", cache)
    assert lazy.collect_schema() == pl.from_arrow(table).schema
    assert cache.ingested_count == 0
    assert cache.stats.readers_created == 0
    readers = []
    for query in [
        lazy,
        lazy.join(lazy, on="id"),
        ctx.execute("SELECT a.id FROM t a JOIN t b ON a.id = b.id + 1", eager=False),
    ]:
        before = cache.stats.readers_created
        query.collect()
        readers.append(cache.stats.readers_created - before)
    # One reader per scan node, both sides of each join included.
    assert readers == [1, 2, 2]


def test_head_stops_pulling_the_upstream(
    counting_upstream: object, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(counting_upstream)
    assert bc_polars.scan(cache).head(5).collect().height == 5
    assert cache.ingested_count == 1


def test_scan_honours_projection_predicate_and_limit(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    frames = list(_scan_batches(cache, table.schema, ["s", "id"], pl.col("id") >= 100, 1000, None))
    assert [frame.columns for frame in frames] == [["s", "id"]] * len(frames)
    combined = pl.concat(frames)
    # The limit counts rows of the source: the first 1000, of which 900 pass.
    assert combined["id"].to_list() == list(range(100, 1000))


def test_numeric_columns_reach_polars_without_a_copy(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    cache.ingest_all()
    # In disk mode these are views of the cache file, as every later read is.
    cached = list(cache.reader())
    frames = list(_scan_batches(cache, table.schema, ["id", "f", "ts", "s"], None, None, None))
    _assert_views_of(cached, frames, ["id", "f", "ts"])


def _assert_views_of(
    cached: list[pa.RecordBatch], frames: list[pl.DataFrame], names: list[str]
) -> None:
    """Each column ``names`` of ``frames`` holds the buffers of the ``cached`` batches."""
    for name in names:
        # A frame may hold several batches, one chunk each.
        chunks = [chunk for frame in frames for chunk in frame.to_arrow().column(name).chunks]
        assert len(chunks) == len(cached)
        for batch, chunk in zip(cached, chunks, strict=True):
            column = batch.column(name)
            start = column.buffers()[1].address + column.offset * column.type.bit_width // 8
            assert chunk.buffers()[1].address == start, name


def test_empty_cache_gives_an_empty_frame_with_the_schema(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table.schema.empty_table())
    lazy = bc_polars.scan(cache)
    expected = pl.from_arrow(table.schema.empty_table())
    assert_frame_equal(lazy.collect(), expected)
    assert lazy.join(lazy, on="id").collect().height == 0
    assert lazy.select(pl.len()).collect().item() == 0


def test_upstream_failure_raises_from_collect(
    failing: Callable[[], pa.RecordBatchReader],
    upstream_message: str,
    make_cache: Callable[..., StreamCache],
) -> None:
    cache = make_cache(failing())
    lazy = bc_polars.scan(cache)
    with pytest.raises(Exception, match=upstream_message):
        lazy.collect()
    with pytest.raises(Exception, match=upstream_message):
        lazy.filter(pl.col("id") > 1000).collect()


# -- pushdown, measured on the pages of the cache file --------------------------


def test_one_column_query_reads_only_that_column(
    wide_disk_cache: StreamCache, page_probe: object
) -> None:
    frame = bc_polars.scan(wide_disk_cache).select(pl.col("s2").n_unique()).collect()
    assert frame.item() == 100_000
    touched = page_probe.touched()  # type: ignore[attr-defined]
    assert min(touched["s2"]) > 0.95
    for name in ("key", "s1", "f1", "f2", "f3"):
        assert max(touched[name]) == 0, name


def test_filter_skips_what_it_excludes(wide_disk_cache: StreamCache, page_probe: object) -> None:
    frame = (
        bc_polars.scan(wide_disk_cache)
        .filter(pl.col("key").is_between(50_000, 50_009))
        .select("s2")
        .collect()
    )
    assert frame.height == 10
    touched = page_probe.touched()  # type: ignore[attr-defined]
    assert min(touched["key"]) > 0.95
    assert max(touched["s2"][:5] + touched["s2"][6:]) == 0
    assert touched["s2"][5] < 0.05
    for name in ("s1", "f1", "f2", "f3"):
        assert max(touched[name]) == 0, name


# -- a fully ingested cache of columns Polars takes without a copy ---------------


def _numeric(table: pa.Table) -> pa.Table:
    return table.select(["id", "f", "ts"])


def test_a_whole_numeric_cache_answers_as_its_frame_at_every_collect(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    numbers = _numeric(table)
    cache = make_cache(numbers)
    cache.ingest_all()
    lazy = bc_polars.scan(cache)
    frame = pl.from_arrow(numbers).lazy()
    queries = [
        lambda f: f.select(pl.len()),
        lambda f: f.select(pl.col("f").sum(), pl.col("id").max()),
        lambda f: f.filter(pl.col("id") >= 1990).select("ts", "id"),
        lambda f: f.filter(pl.col("id").is_null() | (pl.col("f") < 0)).select(pl.len()),
        lambda f: f.head(7),
        lambda f: f.join(f, on="id").select(pl.len()),
        lambda f: f.select("id", pl.col("f").sum().over(pl.col("id") % 7)),
    ]
    for query in queries:
        expected = query(frame).collect()
        for _ in range(2):
            before = cache.stats.readers_created
            assert_frame_equal(query(lazy).collect(), expected)
            # Each collect replays the cache: nothing is kept between collects.
            assert cache.stats.readers_created > before


def test_a_filter_converts_only_the_batches_its_statistics_keep(
    make_cache: Callable[..., StreamCache],
) -> None:
    ordered = pa.table({"k": pa.array(range(10_000), pa.int64())})
    cache = make_cache(ordered, batch_rows=1000)
    cache.ingest_all()
    predicate = (pl.col("k") >= 2500) & (pl.col("k") < 3100)
    skipping = _Skipping(cache)
    selection = skipping.selection(list(cache.reader()), predicate, ordered.schema)
    assert selection is not None
    assert selection.keep.nonzero()[0].tolist() == [2, 3]  # batches 2 and 3 of 10
    frames = list(_scan_batches(cache, ordered.schema, ["k"], predicate, None, skipping))
    assert sum(frame.height for frame in frames) == 600
    lazy = bc_polars.scan(cache)
    assert lazy.filter(predicate).select(pl.len()).collect().item() == 600
    assert lazy.filter(pl.col("k") > 9998).collect()["k"].to_list() == [9999]


def test_columns_polars_copies_and_streams_still_being_read_are_scanned_per_collect(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    lazy = bc_polars.scan(cache)
    counts = []
    for _ in range(2):
        before = cache.stats.readers_created
        assert lazy.select("s", "id").collect().height == table.num_rows
        counts.append(cache.stats.readers_created - before)
    assert counts == [1, 1]  # strings are converted per collect: nothing kept


def test_a_collect_raises_once_the_cache_is_closed(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(_numeric(table))
    cache.ingest_all()
    lazy = bc_polars.scan(cache)
    assert lazy.select(pl.col("id").sum()).collect().item() is not None
    cache.close()
    with pytest.raises(Exception, match="closed"):
        lazy.select(pl.col("id").sum()).collect()
