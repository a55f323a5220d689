"""Case groups: each module runs in its own worker process.

A case module exposes ``run(ctx: CaseContext) -> list[dict]``; every dict is
one row of the report (see :func:`bcbench.cases.common.case_row`).
"""

from __future__ import annotations

GROUPS: dict[str, str] = {
    "replay": "bcbench.cases.replay",
    "disk": "bcbench.cases.disk",
    "threads": "bcbench.cases.threads",
    "duckdb": "bcbench.cases.engine_duckdb",
    "polars": "bcbench.cases.engine_polars",
    "datafusion": "bcbench.cases.engine_datafusion",
    "peak_ram": "bcbench.cases.peak_ram",
    "distributed": "bcbench.cases.distributed",
    "flight": "bcbench.cases.flight",
}
"""Group name -> module, in report order."""
