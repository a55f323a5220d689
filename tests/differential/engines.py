"""The engine paths under test: one entry per way a user can query a cache.

Each :class:`EnginePath` opens a source as table ``t`` and runs
:class:`~tests.differential.queries.Query` objects on it. ``over_cache`` is the
path under test; ``over_table`` is the same engine reading the plain
``pa.Table`` the cache was built from, the reference. A new registration path
is one more entry in :data:`PATHS`.

Internal parts under test: ``batchcorder._engines``.
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
from batchcorder._engines import SQL_ENGINES
from batchcorder.adapters import datafusion as bc_datafusion
from batchcorder.adapters import duckdb as bc_duckdb
from batchcorder.adapters import polars as bc_polars
from tests.differential.queries import Query, UnionAll

#: Runs one query on the sources opened by a path; returns its result.
Runner = Callable[[Query], pa.Table]
#: What a path opens: caches (or tables, for the reference) by the name they
#: are registered under, ``t`` and ``u``.
Sources = dict[str, Any]


@dataclass(frozen=True)
class EnginePath:
    """One way to query a cache, and the same engine's way to query a ``pa.Table``.

    Parameters
    ----------
    name : str
        Names the path in test output.
    over_cache : callable
        Opens caches as tables ``t`` and ``u``; returns a runner of queries on them.
    over_table : callable
        Opens ``pa.Table`` objects the same way in the same engine: the reference.
    keeps_order : bool
        Whether the engine keeps scan order through filters, projections and
        ``LIMIT``, so that a ``LIMIT`` without ``ORDER BY`` has one right answer.
    unordered : tuple of type
        Relations (:mod:`tests.differential.queries`) through which the engine on
        this path does not keep scan order, though it does elsewhere: Polars SQL's
        ``UNION ALL`` (Polars 2.1 puts the second input first now and then, over
        a plain frame as over a cache; ``pl.concat`` keeps the order).
    limits : callable or None
        The same engine's own limits over the tables: over a plain pyarrow
        dataset for a dataset path; for the Polars scans, Polars collecting
        without its optimizations (which may fold away a part that raises). Where that raises,
        the path may raise the same kind of error instead of answering (a
        limit of the engine's scan, not of the cache); where the table raises
        and it answers, the path must answer as it does.
    """

    name: str
    over_cache: Callable[[Sources], Runner]
    over_table: Callable[[Sources], Runner]
    keeps_order: bool = False
    limits: Callable[[Sources], Runner] | None = None
    unordered: tuple[type, ...] = ()

    def keeps_order_of(self, query: Query) -> bool:
        """Whether the engine keeps scan order through ``query``'s relation."""
        return self.keeps_order and not isinstance(query.relation, self.unordered)

    def __repr__(self) -> str:
        return self.name

    @property
    def engine(self) -> str:
        """The engine the path runs on: ``duckdb``, ``polars`` or ``datafusion``."""
        for engine in ("datafusion", "polars"):
            if engine in self.name:
                return engine
        return "duckdb"


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


def duckdb_replacement_scan(sources: Sources) -> Runner:
    """``duckdb.sql("... FROM t")`` on the default connection, ``t`` a Python variable."""

    def run(query: Query) -> pa.Table:
        # The replacement scan finds the sources by these names.
        t, u = sources["t"], sources["u"]  # noqa: F841
        return _duckdb_table(duckdb.sql(query.sql("duckdb", "t")))

    return run


def duckdb_connection_replacement_scan(sources: Sources) -> Runner:
    """``con.sql("... FROM t")`` on a connection of its own, ``t`` a Python variable."""
    con = duckdb_connection()

    def run(query: Query) -> pa.Table:
        t, u = sources["t"], sources["u"]  # noqa: F841
        return _duckdb_table(con.sql(query.sql("duckdb", "t")))

    return run


def _duckdb_runner(con: duckdb.DuckDBPyConnection) -> Runner:
    return lambda query: _duckdb_table(con.sql(query.sql("duckdb", "t")))


def duckdb_register(sources: Sources) -> Runner:
    """``con.register("t", source)``: DuckDB's own registration of an Arrow object."""
    con = duckdb_connection()
    for name, source in sources.items():
        con.register(name, source)
    return _duckdb_runner(con)


def duckdb_adapter(pushdown: bool) -> Callable[[Sources], Runner]:
    """``batchcorder.adapters.duckdb.register(con, "t", cache, pushdown=...)``."""

    def open_caches(caches: Sources) -> Runner:
        con = duckdb_connection()
        for name, cache in caches.items():
            if pushdown:
                batchcorder.register(con, name, cache)
            else:
                bc_duckdb.register(con, name, cache, pushdown=False)
        return _duckdb_runner(con)

    return open_caches


def duckdb_adapter_dataset(caches: Sources) -> Runner:
    """``con.register("t", batchcorder.adapters.duckdb.dataset(cache))``."""
    return duckdb_register({name: bc_duckdb.dataset(cache) for name, cache in caches.items()})


# -- Polars ---------------------------------------------------------------------


def _polars_frame_runner(frames: dict[str, pl.LazyFrame], engine: str = "auto") -> Runner:
    return lambda query: query.polars(frames).collect(engine=engine).to_arrow()  # type: ignore[arg-type]


def polars_frame(table: pa.Table) -> pl.LazyFrame:
    """``table`` as a LazyFrame."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy()


def polars_scan(engine: str = "auto") -> Callable[[Sources], Runner]:
    """``batchcorder.adapters.polars.scan(cache)`` and the LazyFrame API."""
    return lambda caches: _polars_frame_runner(
        {name: bc_polars.scan(cache) for name, cache in caches.items()}, engine
    )


def polars_frames(engine: str = "auto") -> Callable[[Sources], Runner]:
    """The tables as LazyFrames (``pl.from_arrow``) and the LazyFrame API."""
    return lambda tables: _polars_frame_runner(
        {name: polars_frame(table) for name, table in tables.items()}, engine
    )


def _unoptimized(frame: pl.LazyFrame, engine: str = "auto") -> pa.Table:
    return frame.collect(engine=engine, optimizations=pl.QueryOptFlags.none()).to_arrow()  # type: ignore[arg-type]


def polars_unoptimized_frames(engine: str = "auto") -> Callable[[Sources], Runner]:
    """The tables as LazyFrames, each query collected without Polars' optimizations.

    The limits of Polars itself: its optimizer may drop a predicate it proves
    false without evaluating a part of it that raises (``(l > [3, 1]) AND (k >
    4) AND (k <= 2)`` answers no row over a frame), and it may not over a
    scan; a scan that evaluates the predicate raises where Polars evaluating
    it raises.
    """

    def runner(tables: Sources) -> Runner:
        frames = {name: polars_frame(table) for name, table in tables.items()}
        return lambda query: _unoptimized(query.polars(frames), engine)  # type: ignore[arg-type]

    return runner


def polars_sql_unoptimized(tables: Sources) -> Runner:
    """Polars SQL over the tables' LazyFrames, collected without optimizations."""
    ctx = pl.SQLContext()
    for name, table in tables.items():
        ctx.register(name, polars_frame(table))
    return lambda query: _unoptimized(ctx.execute(query.sql("polars", "t")))


def batchcorder_scan(caches: Sources) -> Runner:
    """``batchcorder.scan(cache)`` and the LazyFrame API."""
    return _polars_frame_runner({name: batchcorder.scan(cache) for name, cache in caches.items()})


def _polars_sql_runner(ctx: pl.SQLContext) -> Runner:
    return lambda query: ctx.execute(query.sql("polars", "t"), eager=True).to_arrow()


def polars_sql_cache(caches: Sources) -> Runner:
    """``batchcorder.register(pl.SQLContext(), "t", cache)`` and Polars SQL."""
    ctx = pl.SQLContext()
    for name, cache in caches.items():
        batchcorder.register(ctx, name, cache)
    return _polars_sql_runner(ctx)


def polars_sql_table(tables: Sources) -> Runner:
    ctx = pl.SQLContext()
    for name, table in tables.items():
        ctx.register(name, polars_frame(table))
    return _polars_sql_runner(ctx)


# -- DataFusion -----------------------------------------------------------------


def _datafusion_runner(ctx: datafusion.SessionContext) -> Runner:
    return lambda query: ctx.sql(query.sql("datafusion", "t")).to_arrow_table()


def datafusion_cache(caches: Sources) -> Runner:
    """``batchcorder.register(datafusion.SessionContext(), "t", cache)``."""
    ctx = datafusion.SessionContext()
    for name, cache in caches.items():
        batchcorder.register(ctx, name, cache)
    return _datafusion_runner(ctx)


def datafusion_table(tables: Sources) -> Runner:
    ctx = datafusion.SessionContext()
    for name, table in tables.items():
        ctx.register_table(name, ctx.from_arrow(table))
    return _datafusion_runner(ctx)


# -- datasets: pyarrow datasets each engine scans with pushdown --------------------
#
# Polars and DataFusion evaluate the predicates they push into a pyarrow
# dataset with pyarrow's semantics, not their own: pyarrow's float
# comparisons are false for NaN (``NaN > 1.5``, ``NaN = NaN``), where both
# engines order NaN above every number and equal to itself, so over any
# pyarrow dataset they lose or keep NaN rows their own scans would not; and
# pyarrow (26) cannot filter a ``string_view`` column. The reference of
# ``batchcorder.dataset`` (a plain pyarrow dataset of the cache's batches)
# under them is therefore the same engine over a pyarrow dataset of the
# table's batches. The engine adapters' datasets
# (``batchcorder.adapters.<engine>.dataset``) are made for one engine and
# must answer as that engine over the table, except where the engine's own
# scan of any pyarrow dataset raises (pyarrow has no kernel to filter a list or
# a ``string_view`` column; DataFusion cannot plan some sorts and limits over
# a dataset without fragments). DuckDB gives its own answers
# through any dataset, so its reference is the table.


def table_dataset(table: pa.Table) -> ds.InMemoryDataset:
    """A dataset of the table's own batches, as ``batchcorder.dataset`` makes one of a
    cache's (whether pyarrow fails on a ``string_view`` filter depends on the batches)."""
    return ds.InMemoryDataset(table.to_batches(), schema=table.schema)


def duckdb_dataset(caches: Sources) -> Runner:
    """``con.register("t", batchcorder.dataset(cache))``."""
    return duckdb_register({name: batchcorder.dataset(cache) for name, cache in caches.items()})


def polars_dataset(caches: Sources) -> Runner:
    """``polars.scan_pyarrow_dataset(batchcorder.dataset(cache))``."""
    return _polars_frame_runner(
        {name: pl.scan_pyarrow_dataset(batchcorder.dataset(c)) for name, c in caches.items()}
    )


def polars_table_dataset(tables: Sources) -> Runner:
    """``polars.scan_pyarrow_dataset`` of a dataset of the table."""
    return _polars_frame_runner(
        {name: pl.scan_pyarrow_dataset(table_dataset(t)) for name, t in tables.items()}
    )


def _datafusion_datasets(datasets: dict[str, ds.Dataset]) -> Runner:
    ctx = datafusion.SessionContext()
    for name, dataset in datasets.items():
        ctx.register_dataset(name, dataset)
    return _datafusion_runner(ctx)


def datafusion_dataset(caches: Sources) -> Runner:
    """``ctx.register_dataset("t", batchcorder.dataset(cache))``."""
    return _datafusion_datasets({name: batchcorder.dataset(c) for name, c in caches.items()})


def datafusion_adapter_dataset(caches: Sources) -> Runner:
    """``ctx.register_dataset("t", batchcorder.adapters.datafusion.dataset(cache))``."""
    return _datafusion_datasets({name: bc_datafusion.dataset(c) for name, c in caches.items()})


def datafusion_table_dataset(tables: Sources) -> Runner:
    """``ctx.register_dataset`` of a dataset of the table."""
    return _datafusion_datasets({name: table_dataset(t) for name, t in tables.items()})


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
        polars_scan(),
        polars_frames(),
        keeps_order=True,
        limits=polars_unoptimized_frames(),
    ),
    EnginePath(
        "polars adapters.polars.scan, streaming engine",
        polars_scan("streaming"),
        polars_frames("streaming"),
        keeps_order=True,
        limits=polars_unoptimized_frames("streaming"),
    ),
    EnginePath(
        "polars batchcorder.register (SQLContext)",
        polars_sql_cache,
        polars_sql_table,
        keeps_order=True,
        limits=polars_sql_unoptimized,
        unordered=(UnionAll,),
    ),
    EnginePath(
        "polars batchcorder.scan (LazyFrame)",
        batchcorder_scan,
        polars_frames(),
        keeps_order=True,
        limits=polars_unoptimized_frames(),
    ),
    EnginePath("datafusion batchcorder.register", datafusion_cache, datafusion_table),
    EnginePath("duckdb con.register(batchcorder.dataset)", duckdb_dataset, duckdb_register),
    EnginePath(
        "duckdb con.register(adapters.duckdb.dataset)", duckdb_adapter_dataset, duckdb_register
    ),
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
        datafusion_table,
        limits=datafusion_table_dataset,
    ),
]


#: The engines of :data:`PATHS`: every SQL engine of the engine table.
ENGINES = SQL_ENGINES


def paths_of(engine: str) -> list[EnginePath]:
    """The paths of :data:`PATHS` running on ``engine``."""
    return [path for path in PATHS if path.engine == engine]
