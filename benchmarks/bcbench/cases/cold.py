"""Cold start: ingest a stream and answer the first query, against materialising it in the engine.

A fresh one-shot stream of the time-ordered data set (20M rows; 5M with
``--quick``) per run. Ours: ``StreamCache(stream)`` in memory mode, the
engine's default adapter call, the first query. (Disk mode also writes the
cache file, which an in-memory alternative never does; ``analysis.md`` has
its figures.)
The first filtered query includes computing the filter column's batch
statistics. The alternatives copy the stream into the engine's own format
first: DuckDB's ``CREATE TABLE AS``, Polars' ``pl.from_arrow``. Target: ahead
of them (ratio below 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, error_row
from bcbench.cases.warm import BATCH_ROWS, HOT_BYTES, _polars_queries, sql_queries
from bcbench.timing import Bench, Plan, measure_pair

QUERIES = ("filter", "groupby")
"""The first query of each case: the 1% filter on ts, and the group by tag."""


def _plan(ctx: CaseContext) -> Plan:
    """Fewer runs: one run of the DuckDB baseline copies the whole stream (seconds)."""
    return Plan(runs=min(ctx.plan.runs, 5), warmup=1, min_run_s=ctx.plan.min_run_s)


class _Round:
    """One timed run: a fresh stream (and directory), the workload, then cleanup."""

    def __init__(self, ctx: CaseContext, batches: list[Any], mode: str) -> None:
        self._ctx = ctx
        self._batches = batches
        self._mode = mode
        self.source: Any = None
        self.cache: Any = None
        self.closers: list[Callable[[], object]] = []

    def setup(self) -> None:
        self.source = data.source(self._batches)

    def make_cache(self) -> Any:
        if self._mode == "memory":
            self.cache = self._ctx.impl.module.StreamCache(self.source)
        else:
            directory = self._ctx.tmp_root / "cold-cache"
            self.cache = self._ctx.impl.disk_cache_lazy(self.source, directory, HOT_BYTES)
        return self.cache

    def teardown(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        self.source = None


def _duckdb(ctx: CaseContext, batches: list[Any], mode: str, key: str) -> dict[str, Any]:
    import duckdb

    sql = {query.key: query for query in sql_queries(sum(b.num_rows for b in batches))}[key]
    ours, theirs = _Round(ctx, batches, mode), _Round(ctx, batches, mode)

    def materialised() -> Any:
        con = duckdb.connect()
        theirs.closers.append(con.close)
        con.register("stream", theirs.source)
        con.execute("CREATE TABLE t AS SELECT * FROM stream")
        return con.sql(sql.on("t")).fetchall()

    def cached() -> Any:
        con = duckdb.connect()
        ours.closers.append(con.close)
        ctx.impl.module.register(con, "t", ours.make_cache())
        return con.sql(sql.on("t")).fetchall()

    pair = measure_pair(
        Bench(materialised, setup=theirs.setup, teardown=theirs.teardown, repeatable=False),
        Bench(cached, setup=ours.setup, teardown=ours.teardown, repeatable=False),
        _plan(ctx),
    )
    return _row(
        f"cold.duckdb.{mode}.{key}",
        f"cold start: ingest + first DuckDB query ({sql.label}), {mode} mode",
        "CREATE TABLE AS from the stream, then the query",
        "StreamCache(stream), batchcorder.register(con, ...), the query",
        pair,
        len(batches),
    )


def _polars(ctx: CaseContext, batches: list[Any], mode: str, key: str) -> dict[str, Any]:
    import polars as pl

    query = _polars_queries(sum(b.num_rows for b in batches))[key]
    ours, theirs = _Round(ctx, batches, mode), _Round(ctx, batches, mode)

    def materialised() -> Any:
        frame = pl.from_arrow(theirs.source.read_all())
        assert isinstance(frame, pl.DataFrame)
        return query(frame.lazy())

    def cached() -> Any:
        return query(ctx.impl.module.scan(ours.make_cache()))

    pair = measure_pair(
        Bench(materialised, setup=theirs.setup, teardown=theirs.teardown, repeatable=False),
        Bench(cached, setup=ours.setup, teardown=ours.teardown, repeatable=False),
        _plan(ctx),
    )
    label = {query.key: query.label for query in sql_queries(1)}[key]
    return _row(
        f"cold.polars.{mode}.{key}",
        f"cold start: ingest + first Polars query ({label}), {mode} mode",
        "pl.from_arrow(stream.read_all()), then the query",
        "StreamCache(stream), batchcorder.scan(cache), the query",
        pair,
        len(batches),
    )


def _row(
    case_id: str, title: str, baseline: str, subject: str, pair: Any, n_batches: int
) -> dict[str, Any]:
    return case_row(
        case_id=case_id,
        title=title,
        baseline_label=baseline,
        subject_label=subject,
        pair=pair,
        metric="time_ratio",
        target_op="<",
        target_value=1.0,
        target_text="ahead of materialising (< 1x)",
        n_batches=n_batches,
    )


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Time ingest + first query against materialising, per engine, mode and query.

    The reference library has no adapters: its worker returns no row.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
    """
    if ctx.impl.is_reference:
        return []
    batches = data.make_timed_batches(ctx.sizes.warm_rows, BATCH_ROWS)
    rows: list[dict[str, Any]] = []
    for engine, case in (("duckdb", _duckdb), ("polars", _polars)):
        for mode in ("memory",):
            for key in QUERIES:
                try:
                    rows.append(case(ctx, batches, mode, key))
                except Exception as error:
                    rows.append(error_row(f"cold.{engine}.{mode}.{key}", "cold start", error))
    return rows
