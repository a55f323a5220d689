"""DuckDB over a registered cache against DuckDB over the same ``pa.Table``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import duckdb

from bcbench.cases.common import CaseContext, error_row
from bcbench.cases.queries import SQL_QUERIES, engine_data, query_row

Register = Callable[[Any, str, Any], Any]


def _paths(ctx: CaseContext) -> tuple[list[tuple[str, str, Register]], list[str]]:
    """Return the registration paths this implementation offers, and the absent ones."""
    paths: list[tuple[str, str, Register]] = []
    missing: list[str] = []
    if not ctx.impl.is_reference:
        adapter = ctx.impl.adapter("duckdb")
        if adapter is not None:
            paths.append(("adapter", "adapters.duckdb.register(con, ...)", adapter.register))
        else:
            missing.append("adapter")
        generic = ctx.impl.generic_register()
        if generic is not None:
            paths.append(("generic", "batchcorder.register(con, ...)", generic))
        else:
            missing.append("generic")
    paths.append(
        ("native", "con.register(name, cache) (Arrow C stream)", lambda c, n, x: c.register(n, x))
    )
    return paths, missing


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    return con.sql(sql).fetchall()


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Time the three SQL queries over each cache mode and registration path.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        One row per (mode, query, registration path).
    """
    rows: list[dict[str, Any]] = []
    paths, missing = _paths(ctx)
    with engine_data(ctx, "duckdb-") as engine:
        for mode, cache in engine.caches.items():
            for path_key, path_label, register in paths:
                con = duckdb.connect()
                con.register("tbl", engine.table)
                try:
                    register(con, "cached", cache)
                except Exception as error:
                    rows.append(
                        error_row(f"duckdb.{mode}.{path_key}", f"DuckDB {mode} {path_label}", error)
                    )
                    con.close()
                    continue
                for query in SQL_QUERIES:
                    strict = mode == "disk" and query.key == "onecol"
                    rows.append(
                        query_row(
                            ctx,
                            case_id=f"duckdb.{mode}.{query.key}.{path_key}",
                            ref_key=f"duckdb.{mode}.{query.key}",
                            title=f"DuckDB {query.label}, {mode} mode, {path_label}",
                            baseline_label="DuckDB over the pa.Table",
                            subject_label=path_label,
                            baseline=partial(_fetch, con, query.on("tbl")),
                            subject=partial(_fetch, con, query.on("cached")),
                            n_batches=len(engine.batches),
                            target_value=1.0 if strict else 1.3,
                        )
                    )
                con.close()
    for path_key in missing:
        rows.append(
            error_row(
                f"duckdb.{path_key}",
                f"DuckDB via {path_key} registration",
                ImportError(f"{path_key} registration path not available"),
            )
        )
    return rows
