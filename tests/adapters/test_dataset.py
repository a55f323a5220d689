"""``batchcorder.dataset``: a cache as a pyarrow dataset, scanned by Polars, DuckDB and DataFusion."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import datafusion
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

import batchcorder
import batchcorder.adapters.duckdb
from batchcorder import StreamCache


def test_a_dataset_holds_exactly_the_cache(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    data = batchcorder.dataset(cache)
    assert isinstance(data, ds.Dataset)
    assert data.schema == table.schema
    assert cache.upstream_exhausted and cache.stats.readers_created == 1
    for _ in range(2):
        assert data.to_table().equals(table)
    pushed = data.to_table(columns=["id", "s"], filter=ds.field("i") > 20)
    assert pushed.equals(table.filter(pc.field("i") > 20).select(["id", "s"]))
    assert cache.stats.readers_created == 1


def test_polars_scans_the_dataset(table: pa.Table, make_cache: Callable[..., StreamCache]) -> None:
    cache = make_cache(table)
    lf = pl.scan_pyarrow_dataset(batchcorder.dataset(cache))
    query = lf.filter(pl.col("i") > 20).select("id", "s", "ts")
    expected = pl.from_arrow(table).lazy().filter(pl.col("i") > 20).select("id", "s", "ts")
    for _ in range(2):
        assert query.collect().equals(expected.collect())
    assert lf.select(pl.len()).collect().item() == table.num_rows
    assert cache.stats.readers_created == 1


def test_duckdb_scans_the_dataset(table: pa.Table, make_cache: Callable[..., StreamCache]) -> None:
    cache = make_cache(table)
    con = duckdb.connect()
    con.register("t", batchcorder.dataset(cache))
    sql = "SELECT id, s, dec FROM {} WHERE i > 20 AND s LIKE 's1%' ORDER BY id"
    expected = duckdb.connect().from_arrow(table).query("src", sql.format("src")).fetchall()
    assert expected
    for _ in range(2):
        assert con.sql(sql.format("t")).fetchall() == expected
    assert cache.stats.readers_created == 1


def test_datafusion_scans_the_dataset(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    ctx = datafusion.SessionContext()
    ctx.register_dataset("t", batchcorder.dataset(cache))
    reference = datafusion.SessionContext()
    reference.register_record_batches("t", [table.to_batches()])
    sql = "SELECT id, s, f FROM t WHERE i > 20 ORDER BY id"
    expected = reference.sql(sql).to_arrow_table()
    assert expected.num_rows > 0
    for _ in range(2):
        assert ctx.sql(sql).to_arrow_table().equals(expected)
    assert cache.stats.readers_created == 1


def test_the_duckdb_adapters_dataset_is_the_same(table: pa.Table) -> None:
    cache = StreamCache(table.to_reader(max_chunksize=256))
    data = batchcorder.adapters.duckdb.dataset(cache)
    assert isinstance(data, ds.InMemoryDataset)
    assert data.to_table().equals(table)


def test_an_empty_cache_gives_an_empty_dataset_with_its_schema(table: pa.Table) -> None:
    empty = pa.RecordBatchReader.from_batches(table.schema, [])
    data = batchcorder.dataset(StreamCache(empty))
    assert data.schema == table.schema
    assert data.count_rows() == 0
    assert pl.scan_pyarrow_dataset(data).collect().shape == (0, table.num_columns)


def test_a_cast_view_gives_a_cast_dataset(table: pa.Table) -> None:
    target = pa.schema([("id", pa.float64()) if f.name == "id" else f for f in table.schema])
    data = batchcorder.dataset(StreamCache(table).cast(target))
    assert data.schema == target
    assert data.to_table().equals(table.cast(target))


def test_an_upstream_failure_raises_when_the_dataset_is_made(
    failing: Callable[[], pa.RecordBatchReader], upstream_message: str
) -> None:
    with pytest.raises(RuntimeError, match=upstream_message):
        batchcorder.dataset(StreamCache(failing()))


@pytest.mark.parametrize("not_a_cache", [pa.table({"x": [1]}), None, "cache"])
def test_what_is_not_a_cache_is_refused(not_a_cache: object) -> None:
    with pytest.raises(TypeError, match=r"batchcorder\.dataset: cache must be"):
        batchcorder.dataset(not_a_cache)  # type: ignore[arg-type]


def test_making_a_dataset_imports_no_engine() -> None:
    code = (
        "import sys, pyarrow as pa, batchcorder\n"
        "data = batchcorder.dataset(batchcorder.StreamCache(pa.table({'x': [1, 2]})))\n"
        "assert data.count_rows() == 2\n"
        "print(sorted(m for m in ('duckdb', 'polars', 'datafusion') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_polars_reads_a_cache_eagerly_with_dataframe(table: pa.Table) -> None:
    cache = StreamCache(table.to_reader(max_chunksize=256))
    frame = pl.DataFrame(cache)
    assert frame.equals(pl.from_arrow(table))
    # pl.from_arrow makes a generic Arrow stream a Series of structs, which is
    # why the documentation names pl.DataFrame(cache) and scan(cache).
    assert isinstance(pl.from_arrow(cache), pl.Series)


def test_datafusion_from_arrow_and_register_view(
    table: pa.Table, make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(table)
    ctx = datafusion.SessionContext()
    ctx.register_view("v", ctx.from_arrow(cache))
    assert cache.stats.readers_created == 1
    for _ in range(2):
        assert ctx.sql("SELECT count(*) AS n, sum(i) AS s FROM v").to_pydict() == {
            "n": [table.num_rows],
            "s": [pc.sum(table["i"]).as_py()],
        }
    assert cache.stats.readers_created == 1
