"""Engine results as the upstream: a DuckDB relation, a Polars DataFrame, a DataFusion DataFrame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datafusion
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from batchcorder import StreamCache


def duckdb_relation() -> Any:
    return duckdb.connect().sql("SELECT range AS x, range * 2 AS y FROM range(5000)")


def polars_frame() -> Any:
    return pl.DataFrame({"x": range(5000), "y": [v * 2 for v in range(5000)]})


def datafusion_frame() -> Any:
    ctx = datafusion.SessionContext()
    return ctx.sql(
        "SELECT CAST(value AS BIGINT) AS x, CAST(value * 2 AS BIGINT) AS y FROM range(5000)"
    )


@pytest.mark.parametrize("make_source", [duckdb_relation, polars_frame, datafusion_frame])
def test_engine_results_are_cached_and_replayed(
    make_source: Callable[[], Any], make_cache: Callable[..., StreamCache]
) -> None:
    cache = make_cache(make_source())
    first = pa.table(cache)
    assert first.num_rows == 5000
    assert sorted(first.column("x").to_pylist()) == list(range(5000))
    assert pc.multiply(first.column("x"), 2).equals(first.column("y"))
    for _ in range(2):
        assert pa.table(cache).equals(first)
    # The cached result feeds another engine.
    assert duckdb.sql("SELECT sum(y) FROM cache").fetchall() == [(2 * sum(range(5000)),)]
