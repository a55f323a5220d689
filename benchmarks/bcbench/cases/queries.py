"""Queries shared by the engine cases, and what engine cases have in common."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, error_row
from bcbench.timing import Bench, measure_pair


@dataclass(frozen=True)
class Query:
    """One SQL query over a table named by ``{t}``.

    Attributes
    ----------
    key : str
        Short identifier used in case ids.
    label : str
        Description used in titles.
    sql : str
        Query text with ``{t}`` standing for the table name.
    """

    key: str
    label: str
    sql: str

    def on(self, table_name: str) -> str:
        """Return the query text over ``table_name``."""
        return self.sql.format(t=table_name)


SQL_QUERIES = (
    Query(
        "sum",
        "sum of 3 cols",
        "SELECT sum(id) AS i, sum(key) AS k, sum(value) AS v FROM {t}",
    ),
    Query(
        "groupby",
        "group by",
        "SELECT tag, count(*) AS n, sum(value) AS v, avg(key) AS k FROM {t} GROUP BY tag ORDER BY tag",
    ),
    Query("onecol", "one-column sum", "SELECT sum(value) AS v FROM {t}"),
)
"""The DuckDB and DataFusion queries: full scan, group by, one column."""


@dataclass
class EngineData:
    """The table and both cache modes over the same batches."""

    batches: list[pa.RecordBatch]
    table: pa.Table
    caches: dict[str, Any]

    def close(self) -> None:
        """Close every cache."""
        for cache in self.caches.values():
            cache.close()


@contextmanager
def engine_data(ctx: CaseContext, prefix: str) -> Iterator[EngineData]:
    """Yield the main data set as a table, a memory cache and a disk cache.

    The disk cache has a 1-byte hot layer so every read goes to its file.
    """
    batches = data.make_batches(ctx.sizes.rows, ctx.sizes.big_batch_rows)
    table = pa.Table.from_batches(batches, schema=data.SCHEMA)
    with ctx.scratch_dir(prefix) as root:
        caches = {
            "memory": ctx.impl.memory_cache(batches),
            "disk": ctx.impl.disk_cache(batches, Path(root) / "cache", hot_bytes=1),
        }
        engine = EngineData(batches=batches, table=table, caches=caches)
        try:
            yield engine
        finally:
            engine.close()


def _close_enough(left: Any, right: Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_close_enough(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_close_enough, left, right))
    return bool(left == right)


def same_result(left: Any, right: Any) -> bool:
    """Compare query results, allowing float summation-order differences."""
    return _close_enough(left, right)


def query_row(
    ctx: CaseContext,
    *,
    case_id: str,
    ref_key: str,
    title: str,
    baseline_label: str,
    subject_label: str,
    baseline: Callable[[], Any],
    subject: Callable[[], Any],
    n_batches: int,
    target_value: float = 1.3,
    target_text: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Check both sides agree, then time them; return a row or an error row."""
    try:
        expected, got = baseline(), subject()
        if not same_result(expected, got):
            raise AssertionError(f"result differs from the table's: {got!r} != {expected!r}")
        pair = measure_pair(Bench(baseline), Bench(subject), ctx.plan)
    except Exception as error:
        return error_row(case_id, title, error)
    text = target_text or (
        "not slower than the table" if target_value == 1.0 else f"within {target_value}x"
    )
    return case_row(
        case_id=case_id,
        ref_key=ref_key,
        title=title,
        baseline_label=baseline_label,
        subject_label=subject_label,
        pair=pair,
        metric="time_ratio",
        target_op="<=",
        target_value=target_value,
        target_text=text,
        n_batches=n_batches,
        note=note,
    )
