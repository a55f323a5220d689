"""``batchcorder.register`` dispatch, lazy engine imports, and the engine sections of the docs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import datafusion
import duckdb
import polars as pl
import pyarrow as pa
import pytest

import batchcorder
from batchcorder import StreamCache

ENGINES = ("duckdb", "polars", "datafusion")


def test_duckdb_connection_gets_a_relation(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    con = duckdb.connect()
    relation = batchcorder.register(con, "t", make_cache(table))
    assert isinstance(relation, duckdb.DuckDBPyRelation)
    assert con.sql("SELECT count(*) FROM t WHERE i < 0").fetchall() == (
        duckdb.connect().from_arrow(table).filter("i < 0").count("*").fetchall()
    )


def test_polars_sql_context_gets_a_lazy_frame(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    ctx = pl.SQLContext()
    frame = batchcorder.register(ctx, "t", make_cache(table))
    assert isinstance(frame, pl.LazyFrame)
    assert ctx.execute("SELECT count(*) AS n FROM t", eager=True)["n"].item() == table.num_rows
    assert ctx.tables() == ["t"]


def test_datafusion_session_gets_a_data_frame(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    ctx = datafusion.SessionContext()
    frame = batchcorder.register(ctx, "t", make_cache(table))
    assert isinstance(frame, datafusion.DataFrame)
    assert ctx.sql("SELECT count(*) AS n FROM t").to_pydict() == {"n": [table.num_rows]}


@pytest.mark.parametrize(
    "target",
    [object(), "duckdb", 42, pl.DataFrame({"a": [1]}), duckdb.connect().sql("SELECT 1")],
    ids=["object", "str", "int", "polars-frame", "duckdb-relation"],
)
def test_unknown_target_lists_the_supported_ones(target: object, table: pa.Table) -> None:
    cache = StreamCache(table)
    with pytest.raises(TypeError) as raised:
        batchcorder.register(target, "t", cache)
    message = str(raised.value)
    assert type(target).__name__ in message
    for supported in ("DuckDB connection", "polars.SQLContext", "datafusion.SessionContext"):
        assert supported in message
    assert cache.stats.readers_created == 0


@pytest.mark.parametrize(
    "make_target",
    [duckdb.connect, pl.SQLContext, datafusion.SessionContext],
    ids=ENGINES,
)
def test_casting_view_registers_too(make_target: Callable[[], object], table: pa.Table) -> None:
    view = StreamCache(table).cast(
        pa.schema([("id", pa.float64()) if f.name == "id" else f for f in table.schema])
    )
    target = make_target()
    batchcorder.register(target, "t", view)
    sql = "SELECT sum(id) AS total FROM t"
    if isinstance(target, duckdb.DuckDBPyConnection):
        total = target.sql(sql).fetchall()[0][0]
    elif isinstance(target, pl.SQLContext):
        total = target.execute(sql, eager=True)["total"].item()
    else:
        total = target.sql(sql).to_pydict()["total"][0]
    assert total == float(sum(range(table.num_rows)))


def imported_engines(code: str) -> list[str]:
    """The engines imported by running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {ENGINES!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return eval(result.stdout)


def test_importing_batchcorder_imports_no_engine() -> None:
    assert imported_engines("import batchcorder, batchcorder.adapters") == []


def test_registering_imports_only_the_targets_engine() -> None:
    code = (
        "import duckdb, pyarrow as pa, batchcorder\n"
        "batchcorder.register(duckdb.connect(), 't', batchcorder.StreamCache(pa.table({'x': [1]})))\n"
        "try:\n"
        "    batchcorder.register(object(), 't', None)\n"
        "except TypeError:\n"
        "    pass"
    )
    assert imported_engines(code) == ["duckdb"]


def test_bad_name_or_cache_is_refused_before_the_engine_sees_it() -> None:
    con = duckdb.connect()
    cache = StreamCache(pa.table({"x": [1]}))
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        batchcorder.register(con, "", cache)
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        batchcorder.register(con, 3, cache)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="wrap the stream with StreamCache"):
        batchcorder.register(con, "t", pa.table({"x": [1]}))  # type: ignore[arg-type]
