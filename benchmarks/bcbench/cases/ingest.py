"""Ingestion overhead per batch: ``ingest_all()`` against reading the same stream into a list.

Memory mode, 2,000 batches of 1,000 rows: small batches, where a fixed cost
per batch shows. The baseline drains the same kind of one-shot stream with
``read_all()``, which is what the upstream itself costs; the difference,
divided by the batch count, is what the cache adds to each batch it takes in
(checking it against the schema, storing it, publishing it to readers, byte
accounting).
"""

from __future__ import annotations

from typing import Any

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, error_row
from bcbench.timing import Bench, measure_pair

TARGET_US = 3.0
"""What ingestion may add per batch, in microseconds."""


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Time ``ingest_all()`` of a memory-mode cache against ``read_all()`` of the stream.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        One row.
    """
    sizes = ctx.sizes
    count, batch_rows = sizes.ingest_batches, sizes.ingest_batch_rows
    case_id = "ingest.memory.1k"
    title = (
        f"memory mode ingest_all(), {count:,} batches of {batch_rows:,} rows, overhead per batch"
    )
    batches = data.make_batches(count * batch_rows, batch_rows)
    state: dict[str, Any] = {}

    def new_source() -> None:
        state["source"] = data.source(batches)

    def read_all() -> None:
        state.pop("source").read_all()

    def new_cache() -> None:
        state["cache"] = ctx.impl.module.StreamCache(data.source(batches))

    def ingest_all() -> None:
        state["cache"].ingest_all()

    def close_cache() -> None:
        cache = state.pop("cache")
        if cache.ingested_count != count:
            raise AssertionError(f"ingested {cache.ingested_count} of {count} batches")
        cache.close()

    try:
        pair = measure_pair(
            Bench(read_all, setup=new_source, repeatable=False),
            Bench(ingest_all, setup=new_cache, teardown=close_cache, repeatable=False),
            ctx.plan,
        )
    except Exception as error:
        return [error_row(case_id, title, error)]
    return [
        case_row(
            case_id=case_id,
            title=title,
            baseline_label="RecordBatchReader.read_all() of the same stream",
            subject_label="StreamCache(stream).ingest_all()",
            pair=pair,
            metric="overhead_us",
            target_op="<=",
            target_value=TARGET_US,
            target_text=f"overhead <= {TARGET_US:g} us/batch",
            n_batches=count,
        )
    ]
