"""Run one case group in this process and write its raw figures as JSON.

The orchestrator starts one worker per (group, implementation), with our
interpreter or the reference virtualenv's, so every group starts from a fresh
heap and the two ``batchcorder`` distributions never meet in one process.
"""

from __future__ import annotations

import importlib
import json
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from bcbench import impl
from bcbench.cases import ALL_GROUPS
from bcbench.cases.common import FULL, QUICK, CaseContext
from bcbench.timing import Plan


def context_from_config(config: dict[str, Any]) -> CaseContext:
    """Build the :class:`CaseContext` described by the orchestrator's config."""
    return CaseContext(
        impl=impl.load(),
        plan=Plan(**config["plan"]),
        sizes=replace(
            QUICK if config["quick"] else FULL,
            big_bytes=config.get("big_bytes", FULL.big_bytes),
        ),
        tmp_root=Path(config["tmp_root"]),
        ram_runs=config["ram_runs"],
    )


def main(group: str, config_json: str, out: str) -> int:
    """Run ``group`` and write ``{"impl": ..., "rows": [...]}`` to ``out``.

    Parameters
    ----------
    group : str
        Key of :data:`bcbench.cases.ALL_GROUPS`.
    config_json : str
        Plan, sizes and paths chosen by the orchestrator.
    out : str
        JSON file to write.

    Returns
    -------
    int
        Process exit code (0 even when single cases failed: they are rows).
    """
    config = json.loads(config_json)
    started = time.perf_counter()
    document: dict[str, Any] = {"group": group}
    try:
        ctx = context_from_config(config)
        document["impl"] = {"version": ctx.impl.version, "location": ctx.impl.location}
        module = importlib.import_module(ALL_GROUPS[group])
        document["rows"] = module.run(ctx)
    except Exception as error:
        document["error"] = f"{type(error).__name__}: {error}"
        document["traceback"] = traceback.format_exc()
        document.setdefault("rows", [])
    document["seconds"] = round(time.perf_counter() - started, 2)
    Path(out).write_text(json.dumps(document))
    return 0
