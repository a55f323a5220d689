"""Polars over a cache (``scan``) against ``pl.from_arrow(table).lazy()``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import polars as pl
import pyarrow as pa

from bcbench.cases.common import CaseContext, error_row
from bcbench.cases.queries import engine_data, query_row

SQL = "SELECT tag, sum(value) AS s, count(*) AS n FROM cached WHERE value > 0.5 GROUP BY tag"


def _query(frame: pl.LazyFrame) -> list[dict[str, Any]]:
    """Filter + group by; the LazyFrame is built by the caller, inside the timing."""
    result = (
        frame.filter(pl.col("value") > 0.5)
        .group_by("tag")
        .agg(pl.col("value").sum().alias("s"), pl.len().alias("n"))
        .sort("tag")
        .collect()
    )
    return result.to_dicts()


def _table_query(table: pa.Table) -> list[dict[str, Any]]:
    """The baseline: convert the table, then the same query."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a Table always converts to a DataFrame
    return _query(frame.lazy())


def _sql_context(register: Callable[..., Any], cache: Any) -> list[dict[str, Any]]:
    context = pl.SQLContext()
    register(context, "cached", cache)
    return context.execute(SQL).sort("tag").collect().to_dicts()


def _subjects(ctx: CaseContext) -> tuple[list[tuple[str, str, Callable[[Any], Any]]], list[str]]:
    """Return (key, label, run(cache)) per access path, and the absent ones."""
    subjects: list[tuple[str, str, Callable[[Any], Any]]] = []
    missing: list[str] = []
    if not ctx.impl.is_reference:
        adapter = ctx.impl.adapter("polars")
        if adapter is not None and hasattr(adapter, "scan"):
            subjects.append(
                ("scan", "adapters.polars.scan(cache)", lambda c: _query(adapter.scan(c)))
            )
        else:
            missing.append("scan")
        generic = ctx.impl.generic_register()
        if generic is not None:
            subjects.append(
                (
                    "generic",
                    "batchcorder.register(pl.SQLContext(), ...)",
                    lambda c: _sql_context(generic, c),
                )
            )
        else:
            missing.append("generic")
    subjects.append(
        ("native", "pl.DataFrame(cache).lazy()", lambda c: _query(pl.DataFrame(c).lazy()))
    )
    return subjects, missing


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Time filter + group by over each cache mode and access path.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        One row per (mode, access path).
    """
    rows: list[dict[str, Any]] = []
    subjects, missing = _subjects(ctx)
    with engine_data(ctx, "polars-") as engine:
        table = engine.table
        for mode, cache in engine.caches.items():
            for key, label, subject in subjects:
                rows.append(
                    query_row(
                        ctx,
                        case_id=f"polars.{mode}.{key}",
                        ref_key=f"polars.{mode}",
                        title=f"Polars filter + group by, {mode} mode, {label}",
                        baseline_label="pl.from_arrow(table).lazy()",
                        subject_label=label,
                        baseline=partial(_table_query, table),
                        subject=partial(subject, cache),
                        n_batches=len(engine.batches),
                    )
                )
    for key in missing:
        rows.append(
            error_row(
                f"polars.{key}",
                f"Polars via {key}",
                ImportError(f"{key} access path not available"),
            )
        )
    return rows
