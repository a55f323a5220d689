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
    for supported in (
        "DuckDB connection",
        "duckdb module",
        "polars.SQLContext",
        "datafusion.SessionContext",
    ):
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


@pytest.mark.parametrize(
    "make_target",
    [duckdb.connect, pl.SQLContext, datafusion.SessionContext],
    ids=ENGINES,
)
def test_bad_name_or_cache_is_refused_before_the_engine_sees_it(
    make_target: Callable[[], object],
) -> None:
    target = make_target()
    cache = StreamCache(pa.table({"x": [1]}))
    with pytest.raises(ValueError, match="name must be a non-empty table name"):
        batchcorder.register(target, "", cache)
    with pytest.raises(TypeError, match="name must be a str, got int"):
        batchcorder.register(target, 3, cache)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a str, got NoneType"):
        batchcorder.register(target, None, cache)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="wrap the stream with StreamCache"):
        batchcorder.register(target, "t", pa.table({"x": [1]}))  # type: ignore[arg-type]
    assert cache.stats.readers_created == 0


# -- engine options pass through ----------------------------------------------


def test_duckdb_options_pass_through(table: pa.Table) -> None:
    con = duckdb.connect()
    cache = StreamCache(table.to_reader(max_chunksize=256))
    batchcorder.register(con, "lazy", cache, pushdown=False)
    # The lazy path reads nothing at registration; pushdown would read it all.
    assert cache.stats.readers_created == 0 and cache.ingested_count == 0
    assert con.sql("SELECT count(*) FROM lazy").fetchall() == [(table.num_rows,)]
    batchcorder.register(con, "pushed", cache, pushdown=True)
    assert cache.stats.readers_created == 2
    assert con.sql("SELECT count(*) FROM pushed").fetchall() == [(table.num_rows,)]
    assert cache.stats.readers_created == 2


@pytest.mark.parametrize(
    ("make_target", "engine", "takes"),
    [
        (duckdb.connect, "DuckDB", "DuckDB takes: pushdown"),
        (pl.SQLContext, "Polars", "Polars takes none"),
        (datafusion.SessionContext, "DataFusion", "DataFusion takes none"),
    ],
    ids=ENGINES,
)
def test_an_option_the_engine_does_not_take_names_it_and_the_engine(
    make_target: Callable[[], object], engine: str, takes: str
) -> None:
    cache = StreamCache(pa.table({"x": [1]}))
    with pytest.raises(TypeError) as raised:
        batchcorder.register(make_target(), "t", cache, push_down=False)
    assert str(raised.value) == (
        f"register() got an unknown option 'push_down' for {engine}; {takes}"
    )
    assert cache.stats.readers_created == 0


# -- the duckdb module: DuckDB's default connection ---------------------------


def test_the_duckdb_module_means_its_default_connection(table: pa.Table) -> None:
    cache = StreamCache(table)
    name = "batchcorder_register_default_connection"
    try:
        relation = batchcorder.register(duckdb, name, cache)
        assert isinstance(relation, duckdb.DuckDBPyRelation)
        # duckdb.sql runs on the default connection, so it sees the table.
        assert duckdb.sql(f"SELECT count(*) FROM {name}").fetchall() == [(table.num_rows,)]
        batchcorder.register(duckdb, name, cache, pushdown=False)
        assert duckdb.sql(f"SELECT sum(id) FROM {name}").fetchall() == [
            (sum(range(table.num_rows)),)
        ]
    finally:
        duckdb.unregister(name)


def test_another_module_is_not_a_target() -> None:
    import types

    with pytest.raises(TypeError, match="supported targets are"):
        batchcorder.register(types, "t", StreamCache(pa.table({"x": [1]})))


# -- registering a name again replaces it, in every engine ---------------------


def _count(target: object, sql: str) -> int:
    if isinstance(target, duckdb.DuckDBPyConnection):
        return target.sql(sql).fetchall()[0][0]
    if isinstance(target, pl.SQLContext):
        return target.execute(sql, eager=True).item()
    assert isinstance(target, datafusion.SessionContext)
    return next(iter(target.sql(sql).to_pydict().values()))[0]


@pytest.mark.parametrize(
    ("make_target", "options"),
    [
        (duckdb.connect, {}),
        (duckdb.connect, {"pushdown": False}),
        (pl.SQLContext, {}),
        (datafusion.SessionContext, {}),
    ],
    ids=["duckdb", "duckdb-lazy", "polars", "datafusion"],
)
def test_registering_a_name_again_replaces_the_table(
    make_target: Callable[[], object],
    options: dict[str, object],
    make_cache: Callable[..., StreamCache],
) -> None:
    target = make_target()
    first = make_cache(pa.table({"x": range(10)}))
    second = make_cache(pa.table({"x": range(100, 103), "y": ["a", "b", "c"]}))
    batchcorder.register(target, "t", first, **options)
    assert _count(target, "SELECT count(*) AS n FROM t") == 10
    batchcorder.register(target, "t", second, **options)
    assert _count(target, "SELECT count(*) AS n FROM t") == 3
    assert _count(target, "SELECT min(x) AS m FROM t") == 100
    assert _count(target, "SELECT count(y) AS n FROM t") == 3


def test_datafusion_keeps_the_old_table_when_the_new_cache_fails(
    table: pa.Table, failing: Callable[[], pa.RecordBatchReader], upstream_message: str
) -> None:
    ctx = datafusion.SessionContext()
    batchcorder.register(ctx, "t", StreamCache(table))
    with pytest.raises(RuntimeError, match=upstream_message):
        batchcorder.register(ctx, "t", StreamCache(failing()))
    assert ctx.sql("SELECT count(*) AS n FROM t").to_pydict() == {"n": [table.num_rows]}


# -- batchcorder.scan ------------------------------------------------------------


def test_scan_is_the_polars_adapters_scan(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    lf = batchcorder.scan(cache)
    assert isinstance(lf, pl.LazyFrame)
    assert cache.stats.readers_created == 0
    query = lf.filter(pl.col("i") > 20).select("id", "s")
    expected = pl.from_arrow(table).lazy().filter(pl.col("i") > 20).select("id", "s").collect()
    for _ in range(2):
        assert query.collect().equals(expected)
    assert cache.stats.readers_created == 2


def test_scan_refuses_what_is_not_a_cache(table: pa.Table) -> None:
    with pytest.raises(TypeError, match=r"batchcorder\.scan: cache must be a batchcorder"):
        batchcorder.scan(table)  # type: ignore[arg-type]


def test_scan_imports_polars_only_when_called() -> None:
    code = (
        "import pyarrow as pa, batchcorder\ncache = batchcorder.StreamCache(pa.table({'x': [1]}))"
    )
    assert imported_engines(code) == []
    assert imported_engines(f"{code}\nbatchcorder.scan(cache).collect()") == ["polars"]


# -- an engine that is not installed -------------------------------------------

#: Code that needs an engine, per adapter; ``cache`` is a StreamCache.
NEEDS_ENGINE = [
    ("polars", "from batchcorder.adapters.polars import scan\nscan(cache)"),
    ("polars", "import batchcorder\nbatchcorder.scan(cache)"),
    ("polars", "from batchcorder.adapters.polars import register\nregister(None, 't', cache)"),
    (
        "polars",
        "from batchcorder.adapters.polars import polars_schema\npolars_schema(cache.schema)",
    ),
    ("duckdb", "from batchcorder.adapters.duckdb import register\nregister(None, 't', cache)"),
    (
        "datafusion",
        "from batchcorder.adapters.datafusion import register\nregister(None, 't', cache)",
    ),
]


@pytest.mark.parametrize(("engine", "code"), NEEDS_ENGINE)
def test_a_missing_engine_says_which_extra_installs_it(engine: str, code: str) -> None:
    # None in sys.modules makes the import fail as if the engine were not
    # installed; importing the adapter module itself must still work.
    probe = (
        "import sys\n"
        f"sys.modules[{engine!r}] = None\n"
        "import pyarrow as pa\n"
        "from batchcorder import StreamCache\n"
        "cache = StreamCache(pa.table({'x': [1]}))\n"
        f"import batchcorder.adapters.{engine}\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "except ModuleNotFoundError as error:\n"
        "    print(repr(str(error)), error.name, type(error.__cause__).__name__)\n"
        "else:\n"
        "    print('no error')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    message, name, cause = result.stdout.rsplit(" ", 2)
    assert f"pip install 'batchcorder[{engine}]'" in message
    assert "needs" in message and "batchcorder" in message
    assert name == engine
    assert cause.strip() == "ModuleNotFoundError"
    assert "Traceback" not in result.stderr


def test_every_adapter_refuses_what_is_not_a_cache() -> None:
    from batchcorder.adapters import datafusion as bc_datafusion
    from batchcorder.adapters import duckdb as bc_duckdb
    from batchcorder.adapters import polars as bc_polars

    table = pa.table({"x": [1]})
    for call, name in [
        (lambda: bc_polars.scan(table), "polars.scan"),
        (lambda: bc_polars.register(pl.SQLContext(), "t", table), "polars.scan"),
        (lambda: bc_duckdb.register(duckdb.connect(), "t", table), "duckdb"),
        (lambda: bc_datafusion.register(datafusion.SessionContext(), "t", table), "datafusion"),
    ]:
        with pytest.raises(TypeError, match=f"{name}.*got Table"):
            call()
