"""DataFusion over a registered cache against ``register_record_batches``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import datafusion

from bcbench.cases.common import CaseContext, error_row
from bcbench.cases.queries import SQL_QUERIES, engine_data, query_row

NATIVE_NOTE = (
    "DataFusion has no replayable stream table of its own: the native path runs "
    "ctx.from_arrow(cache, name) (one full replay into memory) before every query."
)


def _paths(ctx: CaseContext) -> tuple[list[tuple[str, str, Callable[..., Any] | None]], list[str]]:
    """Return (key, label, register) per path; ``None`` marks the native path."""
    paths: list[tuple[str, str, Callable[..., Any] | None]] = []
    missing: list[str] = []
    if not ctx.impl.is_reference:
        adapter = ctx.impl.adapter("datafusion")
        if adapter is not None:
            paths.append(("adapter", "adapters.datafusion.register(ctx, ...)", adapter.register))
        else:
            missing.append("adapter")
        generic = ctx.impl.generic_register()
        if generic is not None:
            paths.append(("generic", "batchcorder.register(ctx, ...)", generic))
        else:
            missing.append("generic")
    paths.append(("native", "ctx.from_arrow(cache) per query", None))
    return paths, missing


def _native_query(context: datafusion.SessionContext, cache: Any, sql: str) -> list[Any]:
    if context.table_exist("cached"):
        context.deregister_table("cached")
    context.from_arrow(cache, name="cached")
    return _collect(context, sql)


def _collect(context: datafusion.SessionContext, sql: str) -> list[Any]:
    return context.sql(sql).to_arrow_table().to_pylist()


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
    with engine_data(ctx, "datafusion-") as engine:
        for mode, cache in engine.caches.items():
            for path_key, path_label, register in paths:
                context = datafusion.SessionContext()
                context.register_record_batches("tbl", [engine.table.to_batches()])
                if register is not None:
                    try:
                        register(context, "cached", cache)
                    except Exception as error:
                        rows.append(
                            error_row(
                                f"datafusion.{mode}.{path_key}",
                                f"DataFusion {mode} {path_label}",
                                error,
                            )
                        )
                        continue
                for query in SQL_QUERIES:
                    subject: Callable[[], list[Any]]
                    if register is None:
                        subject = partial(_native_query, context, cache, query.on("cached"))
                    else:
                        subject = partial(_collect, context, query.on("cached"))
                    rows.append(
                        query_row(
                            ctx,
                            case_id=f"datafusion.{mode}.{query.key}.{path_key}",
                            ref_key=f"datafusion.{mode}.{query.key}",
                            title=f"DataFusion {query.label}, {mode} mode, {path_label}",
                            baseline_label="ctx.register_record_batches",
                            subject_label=path_label,
                            baseline=partial(_collect, context, query.on("tbl")),
                            subject=subject,
                            n_batches=len(engine.batches),
                            note=NATIVE_NOTE if register is None else None,
                        )
                    )
    for path_key in missing:
        rows.append(
            error_row(
                f"datafusion.{path_key}",
                f"DataFusion via {path_key} registration",
                ImportError(f"{path_key} registration path not available"),
            )
        )
    return rows
