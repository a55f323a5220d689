"""The engine paths under test: one entry per way a user can query a cache.

Each :class:`EnginePath` opens a source as table ``t`` and runs
:class:`~tests.differential.queries.Query` objects on it. ``over_cache`` is the
path under test; ``over_table`` is the same engine reading the plain
``pa.Table`` the cache was built from, the reference. A new registration path
is one more entry in :data:`PATHS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import datafusion
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

import batchcorder
from batchcorder import StreamCache
from batchcorder.adapters import datafusion as bc_datafusion
from batchcorder.adapters import duckdb as bc_duckdb
from batchcorder.adapters import polars as bc_polars
from tests.differential.queries import Query

#: Runs one query on a source opened by a path; returns its result.
Runner = Callable[[Query], pa.Table]


@dataclass(frozen=True)
class EnginePath:
    """One way to query a cache, and the same engine's way to query a ``pa.Table``.

    Parameters
    ----------
    name : str
        Names the path in test output.
    over_cache : callable
        Opens a cache as table ``t``; returns a runner of queries on it.
    over_table : callable
        Opens a ``pa.Table`` the same way in the same engine: the reference.
    keeps_order : bool
        Whether the engine keeps scan order through filters, projections and
        ``LIMIT``, so that a ``LIMIT`` without ``ORDER BY`` has one right answer.
    """

    name: str
    over_cache: Callable[[StreamCache], Runner]
    over_table: Callable[[pa.Table], Runner]
    keeps_order: bool = False

    def __repr__(self) -> str:
        return self.name


def _duckdb_table(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    to_arrow_table = getattr(relation, "to_arrow_table", None)
    if to_arrow_table is not None:
        return to_arrow_table()
    return relation.arrow()  # duckdb < 1.4


# -- DuckDB ---------------------------------------------------------------------

_database: list[duckdb.DuckDBPyConnection] = []


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """A new connection to one shared in-memory database (a cursor: far cheaper than a
    database of its own). Registered objects and replacement scans are per connection."""
    if not _database:
        _database.append(duckdb.connect())
    return _database[0].cursor()


def duckdb_replacement_scan(source: Any) -> Runner:
    """``duckdb.sql("... FROM t")`` on the default connection, ``t`` a Python variable."""

    def run(query: Query) -> pa.Table:
        t = source  # noqa: F841 -- the replacement scan finds the source by this name
        return _duckdb_table(duckdb.sql(query.sql("duckdb", "t")))

    return run


def duckdb_connection_replacement_scan(source: Any) -> Runner:
    """``con.sql("... FROM t")`` on a connection of its own, ``t`` a Python variable."""
    con = duckdb_connection()

    def run(query: Query) -> pa.Table:
        t = source  # noqa: F841 -- the replacement scan finds the source by this name
        return _duckdb_table(con.sql(query.sql("duckdb", "t")))

    return run


def _duckdb_runner(con: duckdb.DuckDBPyConnection) -> Runner:
    return lambda query: _duckdb_table(con.sql(query.sql("duckdb", "t")))


def duckdb_register(source: Any) -> Runner:
    """``con.register("t", source)``: DuckDB's own registration of an Arrow object."""
    con = duckdb_connection()
    con.register("t", source)
    return _duckdb_runner(con)


def duckdb_adapter(pushdown: bool) -> Callable[[StreamCache], Runner]:
    """``batchcorder.adapters.duckdb.register(con, "t", cache, pushdown=...)``."""

    def open_cache(cache: StreamCache) -> Runner:
        con = duckdb_connection()
        if pushdown:
            batchcorder.register(con, "t", cache)
        else:
            bc_duckdb.register(con, "t", cache, pushdown=False)
        return _duckdb_runner(con)

    return open_cache


# -- Polars ---------------------------------------------------------------------


def _polars_frame_runner(frame: pl.LazyFrame, engine: str = "auto") -> Runner:
    return lambda query: query.polars(frame).collect(engine=engine).to_arrow()  # type: ignore[arg-type]


def polars_scan(cache: StreamCache) -> Runner:
    """``batchcorder.adapters.polars.scan(cache)`` and the LazyFrame API."""
    return _polars_frame_runner(bc_polars.scan(cache))


def polars_frame(table: pa.Table) -> pl.LazyFrame:
    """``table`` as a LazyFrame."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy()


def _polars_sql_runner(ctx: pl.SQLContext) -> Runner:
    return lambda query: ctx.execute(query.sql("polars", "t"), eager=True).to_arrow()


def polars_sql_cache(cache: StreamCache) -> Runner:
    """``batchcorder.register(pl.SQLContext(), "t", cache)`` and Polars SQL."""
    ctx = pl.SQLContext()
    batchcorder.register(ctx, "t", cache)
    return _polars_sql_runner(ctx)


def polars_sql_table(table: pa.Table) -> Runner:
    ctx = pl.SQLContext()
    ctx.register("t", polars_frame(table))
    return _polars_sql_runner(ctx)


# -- DataFusion -----------------------------------------------------------------


def _datafusion_runner(ctx: datafusion.SessionContext) -> Runner:
    return lambda query: ctx.sql(query.sql("datafusion", "t")).to_arrow_table()


def datafusion_cache(cache: StreamCache) -> Runner:
    """``batchcorder.register(datafusion.SessionContext(), "t", cache)``."""
    ctx = datafusion.SessionContext()
    batchcorder.register(ctx, "t", cache)
    return _datafusion_runner(ctx)


def datafusion_table(table: pa.Table) -> Runner:
    ctx = datafusion.SessionContext()
    ctx.register_table("t", ctx.from_arrow(table))
    return _datafusion_runner(ctx)


# -- batchcorder.dataset: a pyarrow dataset each engine scans with pushdown --------
#
# Polars and DataFusion evaluate the predicates they push into a pyarrow
# dataset with pyarrow's semantics, not their own: pyarrow's float
# comparisons are false for NaN (``NaN > 1.5``, ``NaN = NaN``), where both
# engines order NaN above every number and equal to itself, so over any
# pyarrow dataset they lose or keep NaN rows their own scans would not; and
# pyarrow (26) cannot filter a ``string_view`` column. Their reference is
# therefore the same engine over a pyarrow dataset of the table's batches.
# DuckDB gives its own answers through a dataset, so its reference is the table.


def table_dataset(table: pa.Table) -> ds.InMemoryDataset:
    """A dataset of the table's own batches, as ``batchcorder.dataset`` makes one of a
    cache's (whether pyarrow fails on a ``string_view`` filter depends on the batches)."""
    return ds.InMemoryDataset(table.to_batches(), schema=table.schema)


def duckdb_dataset(cache: StreamCache) -> Runner:
    """``con.register("t", batchcorder.dataset(cache))``."""
    con = duckdb_connection()
    con.register("t", batchcorder.dataset(cache))
    return _duckdb_runner(con)


def polars_dataset(cache: StreamCache) -> Runner:
    """``polars.scan_pyarrow_dataset(batchcorder.dataset(cache))``."""
    return _polars_frame_runner(pl.scan_pyarrow_dataset(batchcorder.dataset(cache)))


def polars_table_dataset(table: pa.Table) -> Runner:
    """``polars.scan_pyarrow_dataset`` of a dataset of the table."""
    return _polars_frame_runner(pl.scan_pyarrow_dataset(table_dataset(table)))


def datafusion_dataset(cache: StreamCache) -> Runner:
    """``ctx.register_dataset("t", batchcorder.dataset(cache))``."""
    ctx = datafusion.SessionContext()
    ctx.register_dataset("t", batchcorder.dataset(cache))
    return _datafusion_runner(ctx)


def datafusion_adapter_dataset(cache: StreamCache) -> Runner:
    """``ctx.register_dataset("t", batchcorder.adapters.datafusion.dataset(cache))``."""
    ctx = datafusion.SessionContext()
    ctx.register_dataset("t", bc_datafusion.dataset(cache))
    return _datafusion_runner(ctx)


def datafusion_table_dataset(table: pa.Table) -> Runner:
    """``ctx.register_dataset`` of a dataset of the table."""
    ctx = datafusion.SessionContext()
    ctx.register_dataset("t", table_dataset(table))
    return _datafusion_runner(ctx)


PATHS: list[EnginePath] = [
    EnginePath("duckdb.sql replacement scan", duckdb_replacement_scan, duckdb_replacement_scan),
    EnginePath(
        "con.sql replacement scan",
        duckdb_connection_replacement_scan,
        duckdb_connection_replacement_scan,
    ),
    EnginePath("duckdb con.register", duckdb_register, duckdb_register),
    EnginePath("duckdb batchcorder.register (pushdown)", duckdb_adapter(True), duckdb_register),
    EnginePath(
        "duckdb adapters.duckdb.register(pushdown=False)", duckdb_adapter(False), duckdb_register
    ),
    EnginePath(
        "polars adapters.polars.scan (LazyFrame)",
        polars_scan,
        lambda table: _polars_frame_runner(polars_frame(table)),
        keeps_order=True,
    ),
    EnginePath(
        "polars adapters.polars.scan, streaming engine",
        lambda cache: _polars_frame_runner(bc_polars.scan(cache), "streaming"),
        lambda table: _polars_frame_runner(polars_frame(table), "streaming"),
        keeps_order=True,
    ),
    EnginePath(
        "polars batchcorder.register (SQLContext)",
        polars_sql_cache,
        polars_sql_table,
        keeps_order=True,
    ),
    EnginePath(
        "polars batchcorder.scan (LazyFrame)",
        lambda cache: _polars_frame_runner(batchcorder.scan(cache)),
        lambda table: _polars_frame_runner(polars_frame(table)),
        keeps_order=True,
    ),
    EnginePath("datafusion batchcorder.register", datafusion_cache, datafusion_table),
    EnginePath("duckdb con.register(batchcorder.dataset)", duckdb_dataset, duckdb_register),
    EnginePath(
        "polars scan_pyarrow_dataset(batchcorder.dataset)",
        polars_dataset,
        polars_table_dataset,
        keeps_order=True,
    ),
    EnginePath(
        "datafusion register_dataset(batchcorder.dataset)",
        datafusion_dataset,
        datafusion_table_dataset,
    ),
    EnginePath(
        "datafusion register_dataset(adapters.datafusion.dataset)",
        datafusion_adapter_dataset,
        datafusion_table_dataset,
    ),
]
