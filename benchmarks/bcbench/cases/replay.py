"""Memory mode, full replay: per-batch overhead against iterating a table."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, row_or_error
from bcbench.impl import drain_python, drain_stream
from bcbench.timing import Bench, measure_pair


def _iterate_table(table: pa.Table) -> int:
    rows = 0
    for batch in table.to_batches():
        rows += batch.num_rows
    return rows


def _data_sets(ctx: CaseContext) -> list[tuple[str, str, int, int]]:
    sizes = ctx.sizes
    small_rows = sizes.small_batches * sizes.small_batch_rows
    return [
        (
            "64k",
            f"{sizes.rows / 1e6:g}M rows x 4 cols, {sizes.big_batch_rows // 1024}K-row batches",
            sizes.rows,
            sizes.big_batch_rows,
        ),
        (
            "1k",
            f"{small_rows / 1e6:g}M rows x 4 cols, {sizes.small_batch_rows:,}-row batches",
            small_rows,
            sizes.small_batch_rows,
        ),
    ]


@dataclass(frozen=True)
class _ReplayCase:
    """One replay of a memory-mode cache, timed against the same pass over a table."""

    ctx: CaseContext
    cache: Any
    batches: list[pa.RecordBatch]
    total_rows: int
    check_rows: bool

    def row(
        self,
        case_id: str,
        title: str,
        base_label: str,
        subj_label: str,
        base: Bench,
        subj: Bench,
    ) -> dict[str, Any]:
        if self.check_rows and drain_python(self.cache) != self.total_rows:
            raise AssertionError("cache replay lost rows")
        return case_row(
            case_id=case_id,
            title=title,
            baseline_label=base_label,
            subject_label=subj_label,
            pair=measure_pair(base, subj, self.ctx.plan),
            metric="overhead_us",
            target_op="<",
            target_value=2.0,
            target_text="overhead < 2 us/batch; >= 2x faster than 0.1.3",
            ref_speedup_min=2.0,
            n_batches=len(self.batches),
            data_bytes=data.batches_nbytes(self.batches),
        )


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Measure Python iteration and C-stream replay of a memory-mode cache.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        One row per (batch size, access path).
    """
    rows: list[dict[str, Any]] = []
    for size_key, size_text, total_rows, batch_rows in _data_sets(ctx):
        batches = data.make_batches(total_rows, batch_rows)
        table = pa.Table.from_batches(batches, schema=data.SCHEMA)
        cache = ctx.impl.memory_cache(batches)
        n_batches = len(batches)
        paths = [
            (
                "python",
                "Python iteration",
                "for b in table.to_batches()",
                "for b in cache.reader()",
                Bench(partial(_iterate_table, table)),
                Bench(partial(drain_python, cache)),
            ),
            (
                "stream",
                "via __arrow_c_stream__",
                "RecordBatchReader.from_stream(table).read_all()",
                "RecordBatchReader.from_stream(cache).read_all()",
                Bench(partial(drain_stream, table)),
                Bench(partial(drain_stream, cache)),
            ),
        ]
        for path_key, path_text, base_label, subj_label, base, subj in paths:
            case_id = f"replay.memory.{size_key}.{path_key}"
            title = f"memory replay, {size_text} ({n_batches:,} batches), {path_text}"
            measure = _ReplayCase(ctx, cache, batches, total_rows, path_key == "python")
            row = partial(measure.row, case_id, title, base_label, subj_label, base, subj)
            rows.append(row_or_error(case_id, title, row))
        cache.close()
    return rows
