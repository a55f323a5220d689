"""Warm queries through each engine's default adapter path, against the engine's own in-memory form.

The data set is time-ordered (``ts`` grows row by row, as events arrive), 20M
rows x 4 columns in 64K-row batches (5M with ``--quick``). Every engine gets
the cache through the call a user makes without knowing more
(``batchcorder.register`` for DuckDB and DataFusion, ``batchcorder.scan`` for
Polars; DataFusion also through ``adapters.datafusion.dataset``, its path
for selective filters), in memory mode and in disk mode with a 64 MiB hot layer, and is set
against itself over the same data in its own in-memory form, built before the
timing: a ``pa.Table`` for DuckDB (``con.register``) and DataFusion
(``register_record_batches``), a ``DataFrame`` for Polars (``.lazy()``).

Queries: ``count(*)``, ``sum(value)``, a group by over ``tag`` (full scans:
within 1.1x of the baseline), and a filter keeping 1% of the rows by a range
of ``ts`` (at least 3x faster than the engine over its in-memory form, and
for DuckDB within 2x of its native table, whose zone maps skip the same way).
Registration (which for DuckDB and DataFusion reads the whole cache) and the
first filtered query (which computes the filter column's batch statistics)
happen before the timed runs; the cold-start group times them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pyarrow as pa

from bcbench import data
from bcbench.cases.common import CaseContext, error_row
from bcbench.cases.queries import Query, query_row

BATCH_ROWS = 65_536
"""Rows per batch (306 batches for 20M rows)."""

HOT_BYTES = 64 << 20
"""Hot layer of the disk-mode cache: about a tenth of the 722 MB data."""

FULL_SCAN_TARGET = 1.1
"""Full scans: within 1.1x of the engine over its in-memory form."""

FILTER_TARGET = 1 / 3
"""The 1% filter: at least 3x faster than the engine over its in-memory form."""

NATIVE_FILTER_TARGET = 2.0
"""The 1% filter through DuckDB: within 2x of DuckDB's own table."""


def sql_queries(rows: int) -> list[Query]:
    """The SQL queries over ``rows`` rows of the time-ordered data set."""
    low, high = _filter_bounds(rows)
    return [
        Query("count", "count(*)", "SELECT count(*) AS n FROM {t}"),
        Query("sum", "sum(value)", "SELECT sum(value) AS s FROM {t}"),
        Query(
            "groupby",
            "group by tag",
            "SELECT tag, count(*) AS n, sum(value) AS s FROM {t} GROUP BY tag ORDER BY tag",
        ),
        Query(
            "filter",
            "1% range filter on ts",
            f"SELECT count(*) AS n, sum(value) AS s FROM {{t}} "
            f"WHERE ts >= TIMESTAMP '{low}' AND ts < TIMESTAMP '{high}'",
        ),
    ]


def _filter_bounds(rows: int) -> tuple[str, str]:
    """The ``ts`` range of 1% of the rows, from the middle, as SQL timestamp text."""
    low, high = data.timed_range(rows, 0.5, 0.01)
    as_text = pa.array([low, high], pa.timestamp("us")).to_pylist()
    return str(as_text[0]), str(as_text[1])


def _polars_queries(rows: int) -> dict[str, Callable[[Any], Any]]:
    """The same queries as LazyFrame calls; each returns the collected rows."""
    import polars as pl

    low, high = data.timed_range(rows, 0.5, 0.01)
    low_ts = pa.scalar(low, pa.timestamp("us")).as_py()
    high_ts = pa.scalar(high, pa.timestamp("us")).as_py()

    def count(frame: pl.LazyFrame) -> Any:
        return frame.select(pl.len().alias("n")).collect().to_dicts()

    def total(frame: pl.LazyFrame) -> Any:
        return frame.select(pl.col("value").sum().alias("s")).collect().to_dicts()

    def group(frame: pl.LazyFrame) -> Any:
        grouped = frame.group_by("tag").agg(pl.len().alias("n"), pl.col("value").sum().alias("s"))
        return grouped.sort("tag").collect().to_dicts()

    def filtered(frame: pl.LazyFrame) -> Any:
        kept = frame.filter((pl.col("ts") >= low_ts) & (pl.col("ts") < high_ts))
        return (
            kept.select(pl.len().alias("n"), pl.col("value").sum().alias("s")).collect().to_dicts()
        )

    return {"count": count, "sum": total, "groupby": group, "filter": filtered}


def _target(query_key: str) -> tuple[float, str]:
    if query_key == "filter":
        return FILTER_TARGET, ">= 3x faster than the in-memory form"
    return FULL_SCAN_TARGET, "within 1.1x"


def _duckdb_rows(
    ctx: CaseContext, table: pa.Table, caches: dict[str, Any], n_batches: int
) -> list[dict[str, Any]]:
    import duckdb

    rows: list[dict[str, Any]] = []
    con = duckdb.connect()
    con.register("tbl", table)
    con.execute("CREATE TABLE native AS SELECT * FROM tbl")
    for mode, cache in caches.items():
        ctx.impl.module.register(con, f"cache_{mode}", cache)
    fetch = con.sql

    def run(sql: str) -> Any:
        return fetch(sql).fetchall()

    for mode in caches:
        for query in sql_queries(table.num_rows):
            target, text = _target(query.key)
            subject = partial(run, query.on(f"cache_{mode}"))
            rows.append(
                query_row(
                    ctx,
                    case_id=f"warm.duckdb.{mode}.{query.key}",
                    ref_key=f"warm.duckdb.{mode}.{query.key}",
                    title=f"warm DuckDB {query.label}, {mode} mode, batchcorder.register(con, ...)",
                    baseline_label="DuckDB over the pa.Table",
                    subject_label="batchcorder.register(con, name, cache)",
                    baseline=partial(run, query.on("tbl")),
                    subject=subject,
                    n_batches=n_batches,
                    target_value=target,
                    target_text=text,
                )
            )
            if query.key == "filter":
                rows.append(
                    query_row(
                        ctx,
                        case_id=f"warm.duckdb.{mode}.filter.native",
                        ref_key=f"warm.duckdb.{mode}.filter.native",
                        title=f"warm DuckDB {query.label}, {mode} mode, against DuckDB's own table",
                        baseline_label="DuckDB native table (CREATE TABLE AS, zone maps)",
                        subject_label="batchcorder.register(con, name, cache)",
                        baseline=partial(run, query.on("native")),
                        subject=subject,
                        n_batches=n_batches,
                        target_value=NATIVE_FILTER_TARGET,
                        target_text="within 2x of DuckDB's native table",
                    )
                )
    con.close()
    return rows


def _polars_rows(
    ctx: CaseContext, table: pa.Table, caches: dict[str, Any], n_batches: int
) -> list[dict[str, Any]]:
    import polars as pl

    rows: list[dict[str, Any]] = []
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    baseline_frame = frame.lazy()
    queries = _polars_queries(table.num_rows)
    labels = {query.key: query.label for query in sql_queries(table.num_rows)}
    for mode, cache in caches.items():
        scanned = ctx.impl.module.scan(cache)
        for key, query in queries.items():
            target, text = _target(key)
            rows.append(
                query_row(
                    ctx,
                    case_id=f"warm.polars.{mode}.{key}",
                    ref_key=f"warm.polars.{mode}.{key}",
                    title=f"warm Polars {labels[key]}, {mode} mode, batchcorder.scan(cache)",
                    baseline_label="DataFrame.lazy()",
                    subject_label="batchcorder.scan(cache)",
                    baseline=partial(query, baseline_frame),
                    subject=partial(query, scanned),
                    n_batches=n_batches,
                    target_value=target,
                    target_text=text,
                )
            )
    return rows


def _datafusion_rows(
    ctx: CaseContext, table: pa.Table, caches: dict[str, Any], n_batches: int
) -> list[dict[str, Any]]:
    import datafusion

    from batchcorder.adapters import datafusion as adapter

    rows: list[dict[str, Any]] = []
    session = datafusion.SessionContext()
    session.register_record_batches("tbl", [table.to_batches()])
    paths = {
        "register": "batchcorder.register(ctx, ...)",
        "dataset": "ctx.register_dataset(adapters.datafusion.dataset(cache))",
    }
    for mode, cache in caches.items():
        ctx.impl.module.register(session, f"register_{mode}", cache)
        session.register_dataset(f"dataset_{mode}", adapter.dataset(cache))

    def run(sql: str) -> Any:
        return session.sql(sql).to_arrow_table().to_pylist()

    for mode in caches:
        for path, label in paths.items():
            for query in sql_queries(table.num_rows):
                target, text = _target(query.key)
                rows.append(
                    query_row(
                        ctx,
                        case_id=f"warm.datafusion.{mode}.{query.key}.{path}",
                        ref_key=f"warm.datafusion.{mode}.{query.key}.{path}",
                        title=f"warm DataFusion {query.label}, {mode} mode, {label}",
                        baseline_label="register_record_batches(table.to_batches())",
                        subject_label=label,
                        baseline=partial(run, query.on("tbl")),
                        subject=partial(run, query.on(f"{path}_{mode}")),
                        n_batches=n_batches,
                        target_value=target,
                        target_text=text,
                    )
                )
    return rows


ENGINES: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "duckdb": _duckdb_rows,
    "polars": _polars_rows,
    "datafusion": _datafusion_rows,
}


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Time the warm queries of every engine over both cache modes.

    The reference library has no adapters: its worker returns no row.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        One row per (engine, mode, query), plus DuckDB's filter against its native table.
    """
    if ctx.impl.is_reference:
        return []
    total_rows = ctx.sizes.warm_rows
    batches = data.make_timed_batches(total_rows, BATCH_ROWS)
    table = pa.Table.from_batches(batches)
    rows: list[dict[str, Any]] = []
    with ctx.scratch_dir("warm-") as root:
        caches = {
            "memory": ctx.impl.memory_cache(batches),
            "disk": ctx.impl.disk_cache(batches, root / "cache", hot_bytes=HOT_BYTES),
        }
        try:
            for engine, rows_of in ENGINES.items():
                try:
                    rows += rows_of(ctx, table, caches, len(batches))
                except Exception as error:
                    rows.append(error_row(f"warm.{engine}", f"warm {engine} queries", error))
        finally:
            for cache in caches.values():
                cache.close()
    return rows
