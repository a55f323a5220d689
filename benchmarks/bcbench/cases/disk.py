"""Disk mode: ingest rate against a raw IPC write, replay against mmap."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, error_row, row_or_error
from bcbench.impl import drain_python, drain_stream
from bcbench.timing import Bench, measure_pair

INGEST_HOT_BYTES = 64 << 20
"""Hot layer of the ingest case (every batch is written on insertion anyway)."""


def _write_ipc(batches: list[pa.RecordBatch], path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, data.SCHEMA) as writer:
        for batch in batches:
            writer.write_batch(batch)


def _read_mmap(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


class _IngestRound:
    """One ingest per timed run: fresh source and directory, closed afterwards."""

    def __init__(self, ctx: CaseContext, batches: list[pa.RecordBatch], root: Path) -> None:
        self._ctx = ctx
        self._batches = batches
        self._root = root
        self._cache: Any = None
        self._reader: pa.RecordBatchReader | None = None
        self.disk_bytes: list[int] = []

    def setup(self) -> None:
        shutil.rmtree(self._root / "cache", ignore_errors=True)
        (self._root / "cache").mkdir()
        self._cache = self._ctx.impl.disk_cache_lazy(
            data.source(self._batches), self._root / "cache", INGEST_HOT_BYTES
        )

    def op(self) -> None:
        self._cache.ingest_all()

    def teardown(self) -> None:
        stats = getattr(self._cache, "stats", None)
        if stats is not None:
            self.disk_bytes.append(int(stats.disk_bytes))
        self._cache.close()
        self._cache = None
        shutil.rmtree(self._root / "cache", ignore_errors=True)


def _ingest_case(ctx: CaseContext, batches: list[pa.RecordBatch], root: Path) -> dict[str, Any]:
    baseline_path = root / "baseline.arrow"

    def remove_baseline() -> None:
        baseline_path.unlink(missing_ok=True)

    ingest = _IngestRound(ctx, batches, root)
    pair = measure_pair(
        Bench(lambda: _write_ipc(batches, baseline_path), teardown=remove_baseline),
        Bench(ingest.op, setup=ingest.setup, teardown=ingest.teardown, repeatable=False),
        ctx.plan,
    )
    nbytes = data.batches_nbytes(batches)
    return case_row(
        case_id="disk.ingest",
        title=f"disk mode ingest, {ctx.sizes.rows / 1e6:g}M rows ({nbytes / 1e6:.0f} MB)",
        baseline_label="pyarrow IPC file write, same dir",
        subject_label=f"ingest_all(), {INGEST_HOT_BYTES >> 20} MB hot layer, on_insertion",
        pair=pair,
        metric="rate_ratio",
        target_op=">=",
        target_value=0.7,
        target_text=">= 0.7x raw write rate",
        n_batches=len(batches),
        data_bytes=nbytes,
        extra={"disk_bytes": ingest.disk_bytes[-1:] or None},
    )


_REPLAY_PATHS = {"stream": "via __arrow_c_stream__", "python": "Python iteration"}


def _replay_title(path_key: str) -> str:
    return f"disk mode replay, 1-byte hot layer, page cache warm, {_REPLAY_PATHS[path_key]}"


def _replay_cases(
    ctx: CaseContext, batches: list[pa.RecordBatch], root: Path
) -> list[dict[str, Any]]:
    baseline_path = root / "baseline.arrow"
    _write_ipc(batches, baseline_path)
    cache = ctx.impl.disk_cache(batches, root / "replay-cache", hot_bytes=1)
    n_rows = sum(batch.num_rows for batch in batches)

    def replay_row(path_key: str, case_id: str, subject: Bench) -> dict[str, Any]:
        if drain_stream(cache).num_rows != n_rows:
            raise AssertionError("disk replay lost rows")
        return case_row(
            case_id=case_id,
            title=_replay_title(path_key),
            baseline_label="ipc.open_file(memory_map(path)).read_all()",
            subject_label=(
                "from_stream(cache).read_all()"
                if path_key == "stream"
                else "for b in cache.reader()"
            ),
            pair=measure_pair(Bench(lambda: _read_mmap(baseline_path)), subject, ctx.plan),
            metric="time_ratio",
            target_op="<=",
            target_value=3.0,
            target_text="within 3x of mmap read",
            n_batches=len(batches),
            data_bytes=data.batches_nbytes(batches),
        )

    rows = [
        row_or_error(
            f"disk.replay.{path_key}",
            _replay_title(path_key),
            partial(replay_row, path_key, f"disk.replay.{path_key}", subject),
        )
        for path_key, subject in (
            ("stream", Bench(lambda: drain_stream(cache))),
            ("python", Bench(lambda: drain_python(cache))),
        )
    ]
    cache.close()
    return rows


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Measure disk-mode ingest and disk-mode replay.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        The ingest row and one replay row per access path.
    """
    batches = data.make_batches(ctx.sizes.rows, ctx.sizes.big_batch_rows)
    rows: list[dict[str, Any]] = []
    with ctx.scratch_dir("disk-ingest-") as root:
        ingest = partial(_ingest_case, ctx, batches, root)
        rows.append(row_or_error("disk.ingest", "disk mode ingest", ingest))
    with ctx.scratch_dir("disk-replay-") as root:
        try:
            rows.extend(_replay_cases(ctx, batches, root))
        except Exception as error:
            rows.append(error_row("disk.replay.stream", "disk mode replay", error))
    return rows
