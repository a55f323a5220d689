"""Beyond one process: epochs over a finished disk-mode cache in 1 process, 2 worker processes, Ray.

One finished disk-mode cache of about 1 GiB (256 MiB with ``--quick``) in
64K-row batches. A timed operation is ``EPOCHS`` epochs; each epoch reads
every batch once and hands it to a per-batch function:

- *read-only loop*: sums the three fixed-width columns (C++ kernels; reads
  every page of those columns, holds no lock for long);
- *GIL-bound transform*: a pure-Python loop over one value in
  ``GIL_EVERY`` of a column, the GIL held throughout.

The baseline is one process iterating the cache's reader. The subjects:

- *2 worker processes*: a ``multiprocessing`` pool (``spawn``) started once,
  each worker holding the cache's :class:`~batchcorder.CacheFileView` (it
  arrived pickled, as the file's path, and mapped the file); each epoch
  gives each worker one half of the batches;
- *Ray Data*: ``batchcorder.adapters.ray.read(cache).streaming_split(2)``
  on a local 2-CPU cluster, each split iterated by its own Ray actor (with
  no CPU of its own, so the read tasks keep the cluster's CPUs), the way
  trainers read it.

Pools, actors and the cluster start before the timed runs, and the harness's
warm-up runs go first, so the figures are steady-state epochs. Each subject's
result is checked against the baseline's before timing.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bcbench import data
from bcbench.cases.common import QUICK, CaseContext, case_row, error_row, row_or_error
from bcbench.timing import Bench, Pair, measure_pair

EPOCHS = 2
"""Epochs per timed operation."""

FULL_BYTES = 1 << 30
QUICK_BYTES = 256 << 20

GIL_EVERY = 8
"""The GIL-bound transform loops in Python over the rows whose ``id`` is a multiple of this."""

BENCH_DIR = Path(__file__).resolve().parents[2]


# -- the per-batch work (module level: spawned workers and Ray actors import it) ---


def read_only(batch: pa.RecordBatch) -> int:
    """Touch every value of the fixed-width columns (C++ kernels, the GIL mostly released).

    The result depends on the rows only, not on how they are cut into
    batches, so every way of reading the cache must give the same total.
    """
    id_sum = pc.sum(batch.column("id")).as_py() or 0
    key_sum = pc.sum(batch.column("key")).as_py() or 0
    above_half = pc.sum(pc.greater(batch.column("value"), 0.5)).as_py() or 0
    return int(id_sum + key_sum + above_half)


def gil_bound(batch: pa.RecordBatch) -> int:
    """A Python loop over the keys of one row in ``GIL_EVERY``: holds the GIL the whole time."""
    chosen = pc.equal(pc.bit_wise_and(batch.column("id"), GIL_EVERY - 1), 0)
    total = 0
    for key in batch.column("key").filter(chosen).to_numpy().tolist():
        total += (key * key) % 7
    return total


WORK = {"read_only": read_only, "gil_bound": gil_bound}


def consume(batches: Any, work_name: str) -> int:
    """Apply one of ``WORK`` to every batch; return the sum of the results."""
    work = WORK[work_name]
    return sum(work(batch) for batch in batches)


# -- multiprocessing workers ----------------------------------------------------------

#: The worker's CacheFileView, set by the pool's initializer.
_WORKER_VIEW: dict[str, Any] = {}


def _init_worker(view: Any) -> None:
    _WORKER_VIEW["view"] = view


def _work_range(task: tuple[int, int, str]) -> int:
    start, stop, work_name = task
    return consume(_WORKER_VIEW["view"].batch_range(start, stop), work_name)


def _plain_range(task: tuple[str, int, int, str]) -> int:
    """The floor: the same work over batches plain pyarrow reads from the same file."""
    path, start, stop, work_name = task
    with pa.memory_map(path) as source:
        reader = pa.ipc.open_file(source)
        return consume((reader.get_batch(index) for index in range(start, stop)), work_name)


def _plain_epochs(pool: Any, path: str, batch_count: int, work_name: str) -> int:
    half = batch_count // 2
    tasks = [(path, 0, half, work_name), (path, half, batch_count, work_name)]
    if pool is None:
        return sum(_plain_range((path, 0, batch_count, work_name)) for _ in range(EPOCHS))
    return sum(sum(pool.map(_plain_range, tasks, chunksize=1)) for _ in range(EPOCHS))


def _pool_epochs(pool: Any, batch_count: int, work_name: str) -> int:
    half = batch_count // 2
    tasks = [(0, half, work_name), (half, batch_count, work_name)]
    return sum(sum(pool.map(_work_range, tasks, chunksize=1)) for _ in range(EPOCHS))


# -- Ray ------------------------------------------------------------------------------


def _ray_consumer_class() -> Any:
    import ray

    @ray.remote(num_cpus=0)
    class SplitConsumer:
        """One trainer: iterates its split of the dataset once per call."""

        def __init__(self, split: Any) -> None:
            self._split = split

        def epoch(self, work_name: str) -> int:
            batches = self._split.iter_batches(batch_size=None, batch_format="pyarrow")
            return consume((batch for table in batches for batch in table.to_batches()), work_name)

    return SplitConsumer


def _object_store_epochs(batches: list[pa.RecordBatch]) -> int:
    """What every Ray read pays at least: each block put into the object store and got back."""
    import ray

    rows = 0
    for _ in range(EPOCHS):
        refs = [ray.put(pa.Table.from_batches([batch])) for batch in batches]
        rows += sum(table.num_rows for table in ray.get(refs))
    return rows


def _ray_epochs(consumers: list[Any], work_name: str) -> int:
    import ray

    total = 0
    for _ in range(EPOCHS):
        total += sum(ray.get([consumer.epoch.remote(work_name) for consumer in consumers]))
    return total


# -- the group ------------------------------------------------------------------------


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Measure epochs over a finished cache: 1 process vs 2 worker processes vs Ray Data.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        Four rows (read-only loop and GIL-bound transform, each for 2 worker
        processes and for Ray); none for the reference library, which cannot
        send a cache to another process.
    """
    if ctx.impl.is_reference:
        return []
    total_bytes = QUICK_BYTES if ctx.sizes == QUICK else FULL_BYTES
    rows: list[dict[str, Any]] = []
    with ctx.scratch_dir("distributed-") as root:
        reader, _ = data.lazy_source(total_bytes, ctx.sizes.big_batch_rows)
        cache = ctx.impl.disk_cache_lazy(reader, root / "cache", hot_bytes=1)
        try:
            batch_count = cache.ingest_all()
            view = ctx.impl.module.CacheFileView(cache)
            size = f"{view.nbytes / (1 << 30):.2f} GiB, {batch_count} batches"

            def one_process(work_name: str) -> int:
                return sum(consume(cache.reader(), work_name) for _ in range(EPOCHS))

            common = {
                "n_batches": batch_count * EPOCHS,
                "data_bytes": view.nbytes,
                "baseline_shared": False,
            }
            rows += _process_rows(ctx, view, batch_count, size, one_process, common)
            rows += _ray_rows(ctx, cache, size, one_process, common)
        finally:
            cache.close()
    return rows


def _paired_with_one_process(
    ctx: CaseContext,
    one_process: Callable[[str], int],
    epochs: Callable[[str], int],
    work_name: str,
    who: str,
) -> Pair:
    """Time ``epochs`` against one process, once both computed the same result."""
    expected = one_process(work_name)
    got = epochs(work_name)
    if got != expected:
        raise AssertionError(f"{who} computed {got}, one process {expected}")
    return measure_pair(
        Bench(lambda: one_process(work_name)), Bench(lambda: epochs(work_name)), ctx.plan
    )


def _process_rows(
    ctx: CaseContext, view: Any, batch_count: int, size: str, one_process: Any, common: Any
) -> list[dict[str, Any]]:
    path = str(view.path)
    context = multiprocessing.get_context("spawn")
    with context.Pool(2, initializer=_init_worker, initargs=(view,)) as pool:

        def pool_epochs(work_name: str) -> int:
            return _pool_epochs(pool, batch_count, work_name)

        def process_row(
            work_name: str, case_id: str, title: str, target: tuple[str, float, str]
        ) -> dict[str, Any]:
            pair = _paired_with_one_process(ctx, one_process, pool_epochs, work_name, "2 workers")
            # What this machine allows 2 processes: plain pyarrow, same harness.
            floor = measure_pair(
                Bench(lambda: _plain_epochs(None, path, batch_count, work_name)),
                Bench(lambda: _plain_epochs(pool, path, batch_count, work_name)),
                ctx.plan,
            )
            floor_speedup = floor.baseline_median / floor.subject_median
            return case_row(
                case_id=case_id,
                title=title,
                baseline_label="one process, cache.reader()",
                subject_label="2 worker processes",
                pair=pair,
                metric="time_ratio" if target[0] == "<=" else "rate_ratio",
                target_op=target[0],
                target_value=target[1],
                target_text=target[2],
                note=(
                    f"`{case_id}`: the same 2-process harness over plain pyarrow "
                    "(ipc.open_file(memory_map(path)) in each worker) runs "
                    f"{floor_speedup:.2f}x the throughput of one process in the same worker: "
                    "what the machine gave 2 processes during the run."
                ),
                extra={
                    "floor_op": "plain pyarrow, ipc.open_file(memory_map(path))",
                    "floor_speedup": floor_speedup,
                    # The report reads this key for ">=" targets a machine cannot reach.
                    "floor_throughput_ratio": floor_speedup if target[0] == ">=" else None,
                    "floor_baseline": floor.baseline,
                    "floor_subject": floor.subject,
                },
                **common,
            )

        cases = (
            (
                "read_only",
                "distributed.processes.read_only",
                f"{EPOCHS} epochs, read-only loop, {size}: 2 worker processes (spawn, "
                "pickled CacheFileView)",
                ("<=", 2.0, "within 2x one process"),
            ),
            (
                "gil_bound",
                "distributed.processes.gil_bound",
                f"{EPOCHS} epochs, GIL-bound per-batch transform, {size}: 2 worker processes "
                "(spawn, pickled CacheFileView)",
                (">=", 1.6, ">= 1.6x one process's throughput"),
            ),
        )
        return [
            row_or_error(case_id, title, partial(process_row, work, case_id, title, target))
            for work, case_id, title, target in cases
        ]


def _ray_rows(
    ctx: CaseContext, cache: Any, size: str, one_process: Any, common: Any
) -> list[dict[str, Any]]:
    cases = (
        (
            "read_only",
            "distributed.ray.read_only",
            f"{EPOCHS} epochs, read-only loop, {size}: Ray Data, read(cache).streaming_split(2), "
            "one actor per split",
            ("<=", 2.0, "within 2x one process (after warm-up)"),
        ),
        (
            "gil_bound",
            "distributed.ray.gil_bound",
            f"{EPOCHS} epochs, GIL-bound per-batch transform, {size}: Ray Data, "
            "read(cache).streaming_split(2), one actor per split",
            (">=", 1.6, ">= 1.6x one process's throughput"),
        ),
    )
    try:
        import ray
        import ray.data

        from batchcorder.adapters.ray import read
    except ImportError as error:
        return [error_row(case_id, title, error) for _, case_id, title, _ in cases]
    # Ray's workers import this module (the actor class) from the benchmarks folder.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        splits = read(cache).streaming_split(2, equal=False)
        consumer_class = _ray_consumer_class()
        consumers = [consumer_class.remote(split) for split in splits]
        # The floor of any Ray read: one trip of the data through the object store.
        batches = list(cache.reader())
        floor = measure_pair(
            Bench(lambda: one_process("read_only")),
            Bench(lambda: _object_store_epochs(batches)),
            ctx.plan,
        )
        floor_ratio = floor.subject_median / floor.baseline_median
        note = (
            "`distributed.ray.*`: Ray Data hands every block to its consumers through its "
            "object store (a copy), while one process reads the mapped file in place: putting "
            f"each batch into the object store and getting it back alone takes {floor_ratio:.1f}x "
            "the one-process read-only loop in the same worker."
        )

        def ray_epochs(work_name: str) -> int:
            return _ray_epochs(consumers, work_name)

        def ray_row(
            work_name: str, case_id: str, title: str, target: tuple[str, float, str]
        ) -> dict[str, Any]:
            return case_row(
                case_id=case_id,
                title=title,
                baseline_label="one process, cache.reader()",
                subject_label="Ray Data, 2 split consumers",
                pair=_paired_with_one_process(ctx, one_process, ray_epochs, work_name, "Ray"),
                metric="time_ratio" if target[0] == "<=" else "rate_ratio",
                target_op=target[0],
                target_value=target[1],
                target_text=target[2],
                note=note,
                extra={
                    "ray_version": ray.__version__,
                    "floor_op": "ray.put + ray.get of every batch, per epoch",
                    "floor_time_ratio": floor_ratio,
                    "floor_baseline": floor.baseline,
                    "floor_subject": floor.subject,
                },
                **common,
            )

        return [
            row_or_error(case_id, title, partial(ray_row, work, case_id, title, target))
            for work, case_id, title, target in cases
        ]
    finally:
        ray.shutdown()
