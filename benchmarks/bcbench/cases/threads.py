"""Concurrent readers: N threads each replaying the whole cache vs one thread."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, row_or_error
from bcbench.impl import drain_python, drain_stream
from bcbench.timing import Bench, measure_pair

MAX_REPLAYS_PER_THREAD = 100_000
"""Upper bound of the full replays each thread does per timed run."""


def _replays_for(replay: Callable[[], object], min_run_s: float) -> int:
    """Replays per thread so that one thread's run lasts about ``min_run_s``."""
    replay()
    start = time.perf_counter()
    replay()
    once = time.perf_counter() - start
    return max(1, min(MAX_REPLAYS_PER_THREAD, math.ceil(min_run_s / max(once, 1e-9))))


def _in_threads(count: int, replays: int, replay: Callable[[], object]) -> Callable[[], None]:
    """Return an op that starts ``count`` threads each calling ``replay`` ``replays`` times."""

    def worker(barrier: threading.Barrier, errors: list[BaseException]) -> None:
        try:
            barrier.wait()
            for _ in range(replays):
                replay()
        except BaseException as error:
            errors.append(error)

    def op() -> None:
        barrier = threading.Barrier(count)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=worker, args=(barrier, errors)) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    return op


@dataclass(frozen=True)
class _ThreadsCase:
    """``threads`` readers of one cache against one, and plain pyarrow's floor of the same."""

    ctx: CaseContext
    batches: list[pa.RecordBatch]
    case_id: str
    title: str
    floor_text: str

    def row(
        self,
        make_cache: Callable[[], Any],
        drain: Callable[[Any], object],
        floor_op: Callable[[], object],
    ) -> dict[str, Any]:
        ctx, count = self.ctx, self.ctx.sizes.threads
        cache = make_cache()
        replay = functools.partial(drain, cache)
        replays = _replays_for(replay, ctx.plan.min_run_s)
        pair = measure_pair(
            Bench(_in_threads(1, replays, replay)),
            Bench(_in_threads(count, replays, replay)),
            ctx.plan,
        )
        cache.close()
        floor_ratio: float | None = None
        floor = None
        note = None
        if not ctx.impl.is_reference:
            # A property of pyarrow and the machine: measured once, by our worker.
            floor_replays = _replays_for(floor_op, ctx.plan.min_run_s)
            floor = measure_pair(
                Bench(_in_threads(1, floor_replays, floor_op)),
                Bench(_in_threads(count, floor_replays, floor_op)),
                ctx.plan,
            )
            floor_ratio = count * floor.baseline_median / floor.subject_median
            note = (
                f"`{self.case_id}`: the same {count}-thread harness over plain pyarrow "
                f"({self.floor_text}) reaches {floor_ratio:.2f}x of one thread in the same "
                "worker: what the GIL and the cores allow this access pattern."
            )
        return case_row(
            case_id=self.case_id,
            title=self.title,
            baseline_label=f"1 thread, {replays} replays",
            subject_label=f"{count} threads, {replays} replays each",
            pair=pair,
            metric="throughput_ratio",
            target_op=">=",
            target_value=1.0,
            target_text="total throughput >= 1 thread",
            threads=count,
            n_batches=len(self.batches),
            data_bytes=data.batches_nbytes(self.batches),
            note=note,
            baseline_shared=False,
            extra={
                "floor_op": self.floor_text,
                "floor_throughput_ratio": floor_ratio,
                "floor_baseline": floor.baseline if floor else None,
                "floor_subject": floor.subject if floor else None,
            },
        )


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Measure total replay throughput of N threads against one thread.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        One row for memory mode (Python iteration) and one for disk mode
        (C stream).
    """
    count = ctx.sizes.threads
    batches = data.make_batches(ctx.sizes.rows, ctx.sizes.big_batch_rows)
    table = pa.Table.from_batches(batches, schema=data.SCHEMA)
    rows: list[dict[str, Any]] = []
    with ctx.scratch_dir("threads-") as root:
        ipc_path = root / "table.arrow"
        with pa.OSFile(str(ipc_path), "wb") as sink, pa.ipc.new_file(sink, data.SCHEMA) as writer:
            writer.write_table(table)
        variants = [
            (
                "memory.python",
                "memory mode, Python iteration",
                lambda: ctx.impl.memory_cache(batches),
                drain_python,
                lambda: sum(batch.num_rows for batch in table.to_batches()),
                "iterating the pa.Table's batches",
            ),
            (
                "disk.stream",
                "disk mode (1-byte hot layer), from_stream(cache).read_all()",
                lambda: ctx.impl.disk_cache(batches, root / "cache", hot_bytes=1),
                drain_stream,
                lambda: pa.ipc.open_file(pa.memory_map(str(ipc_path))).read_all(),
                "ipc.open_file(memory_map(path)).read_all()",
            ),
        ]
        for key, text, make_cache, drain, floor_op, floor_text in variants:
            case_id = f"threads.{key}"
            title = f"{count} threads each replaying the whole cache, {text}"
            variant = _ThreadsCase(ctx, batches, case_id, title, floor_text)
            rows.append(
                row_or_error(
                    case_id, title, functools.partial(variant.row, make_cache, drain, floor_op)
                )
            )
    return rows
