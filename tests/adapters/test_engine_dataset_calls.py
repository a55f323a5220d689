"""Exactly what DuckDB and DataFusion call on the datasets their adapters hand them.

The adapters' datasets imitate only the parts of pyarrow's dataset, fragment
and scanner objects each engine uses (``batchcorder.adapters._duckdb_dataset``,
``batchcorder.adapters._datafusion_dataset``). These tests record the calls
the real engines make, so an engine release calling something else fails
here rather than reaching an imitation that does not have it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import StreamCache
from batchcorder.adapters import _datafusion_dataset, _duckdb_dataset

duckdb = pytest.importorskip("duckdb")
datafusion = pytest.importorskip("datafusion")

#: (object kind, attribute) pairs read by engine code (not by batchcorder itself).
Calls = set[tuple[str, str]]


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """The public attributes of the datasets, parts and scans that engine code reads."""
    calls: Calls = set()
    kinds = [
        (_duckdb_dataset.DuckDBDataset, "dataset"),
        (_duckdb_dataset._DuckDBScan, "scan"),
        (_datafusion_dataset.DataFusionDataset, "dataset"),
        (_datafusion_dataset._Part, "fragment"),
        (_datafusion_dataset._PartScan, "scan"),
    ]
    for cls, kind in kinds:
        monkeypatch.setattr(cls, "__getattribute__", _recording(cls, kind, calls), raising=False)
    yield calls


def _recording(cls: type, kind: str, calls: Calls) -> Any:
    original = cls.__getattribute__

    def __getattribute__(self: object, name: str) -> Any:
        if not name.startswith("_") and _from_engine(_caller()):
            calls.add((kind, name))
        return original(self, name)

    return __getattribute__


def _caller() -> str:
    """The module calling the recorded attribute ("" from an engine's own thread)."""
    try:
        return str(sys._getframe(2).f_globals.get("__name__", ""))
    except ValueError:  # no Python frame: a call from an engine thread
        return ""


def _from_engine(module: str) -> bool:
    """Whether a call made in ``module`` is the engine's.

    ``batchcorder._lifetime``'s wrapper of a DuckDB registration passes the
    engine's calls through as they are.
    """
    return not module.startswith("batchcorder") or module == "batchcorder._lifetime"


def _cache() -> StreamCache:
    table = pa.table({"k": range(1000), "v": [str(index) for index in range(1000)]})
    return StreamCache(table.to_reader(max_chunksize=100))


QUERIES = [
    "SELECT v FROM t WHERE k > 950 ORDER BY k",
    "SELECT count(*) AS n FROM t",
    "SELECT k, v FROM t",
]


def test_duckdb_calls_only_schema_and_scanner_then_to_reader(engine_calls: Calls) -> None:
    from batchcorder.adapters import duckdb as bc_duckdb

    con = duckdb.connect()
    bc_duckdb.register(con, "t", _cache())
    engine_calls.clear()
    for query in QUERIES:
        con.sql(query).fetchall()
    assert engine_calls <= {("dataset", "schema"), ("dataset", "scanner"), ("scan", "to_reader")}
    assert {("dataset", "scanner"), ("scan", "to_reader")} <= engine_calls


def test_datafusion_calls_fragments_then_their_scanners_batches(engine_calls: Calls) -> None:
    from batchcorder.adapters import datafusion as bc_datafusion

    ctx = datafusion.SessionContext()
    ctx.register_dataset("t", bc_datafusion.dataset(_cache()))
    engine_calls.clear()
    for query in QUERIES:
        ctx.sql(query).collect()
    assert engine_calls == {
        ("dataset", "schema"),
        ("dataset", "scanner"),
        ("dataset", "get_fragments"),
        ("fragment", "scanner"),
        ("scan", "projected_schema"),
        ("scan", "to_batches"),
    } - _absent(engine_calls)


def _absent(calls: Calls) -> Calls:
    """``("dataset", "schema")`` when the engine took the schema at registration only."""
    return set() if ("dataset", "schema") in calls else {("dataset", "schema")}
