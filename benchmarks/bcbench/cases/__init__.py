"""Case groups: each module runs in its own worker process.

A case module exposes ``run(ctx: CaseContext) -> list[dict]``; every dict is
one row of the report (see :func:`bcbench.cases.common.case_row`).
"""

from __future__ import annotations

GROUPS: dict[str, str] = {
    "replay": "bcbench.cases.replay",
    "ingest": "bcbench.cases.ingest",
    "disk": "bcbench.cases.disk",
    "threads": "bcbench.cases.threads",
    "duckdb": "bcbench.cases.engine_duckdb",
    "polars": "bcbench.cases.engine_polars",
    "datafusion": "bcbench.cases.engine_datafusion",
    "warm": "bcbench.cases.warm",
    "cold": "bcbench.cases.cold",
    "peak_ram": "bcbench.cases.peak_ram",
    "distributed": "bcbench.cases.distributed",
    "flight": "bcbench.cases.flight",
}
"""Group name -> module, in report order."""

OPT_IN: dict[str, str] = {
    "larger_than_ram": "bcbench.cases.larger_than_ram",
}
"""Groups run only when named with ``--only``: they take long or need much disk."""

ALL_GROUPS: dict[str, str] = {**GROUPS, **OPT_IN}
"""Every group a worker can run."""
