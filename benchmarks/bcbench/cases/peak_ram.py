"""Peak extra anonymous RAM of bounded-memory modes, one fresh process per run.

Each run starts a child (``run.py --ram-child SPEC``) with the same
interpreter. The child imports everything, builds its lazy source and reports
``READY``; the parent records the child's ``RssAnon`` as the floor, starts an
:class:`~bcbench.memwatch.AnonWatcher` and says ``GO``; the child runs the
workload and reports ``DONE`` with its row count. Peak extra RAM is the
highest sample minus the floor. The source generates each batch on demand, so
the data itself never exists in the process at once.

``MALLOC_MMAP_THRESHOLD_`` is pinned in the child so glibc returns every
multi-megabyte buffer to the kernel on free instead of growing its dynamic
threshold and keeping freed batches in the heap; without it the figure
measures the allocator's hysteresis rather than what the cache holds.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, row_or_error
from bcbench.memwatch import AnonWatcher, rss_anon_bytes

BATCH_ROWS = 65_536
"""Rows per generated batch (2.4 MB)."""

RUN_PY = Path(__file__).resolve().parents[2] / "run.py"


def child_main(spec_json: str) -> int:
    """Run one peak-RAM workload in this (fresh) process.

    Parameters
    ----------
    spec_json : str
        ``{"case": "max_readers" | "disk_hot", "bytes": N, "hot_bytes": N,
        "dir": PATH}``.

    Returns
    -------
    int
        Process exit code.
    """
    from bcbench import impl

    spec = json.loads(spec_json)
    implementation = impl.load()
    reader, total_rows = data.lazy_source(spec["bytes"], BATCH_ROWS)
    if spec["case"] == "max_readers":
        cache = implementation.module.StreamCache(reader, max_readers=2)
    else:
        cache = implementation.disk_cache_lazy(reader, Path(spec["dir"]), spec["hot_bytes"])
    print(f"READY {rss_anon_bytes()}", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return 2
    rows = 0
    if spec["case"] == "max_readers":
        # Two readers in lock-step: each batch is evicted once both passed it.
        first, second = iter(cache.reader()), iter(cache.reader())
        for left, right in zip(first, second, strict=True):
            rows += left.num_rows
            if right.num_rows != left.num_rows:
                raise AssertionError("lock-step readers disagree")
            del left, right
    else:
        cache.ingest_all()
        rows = impl.drain_python(cache)
    stats = getattr(cache, "stats", None)
    result: dict[str, Any] = {"rows": rows, "expected_rows": total_rows}
    if stats is not None:
        result["stats"] = {
            name: int(getattr(stats, name))
            for name in ("memory_bytes", "disk_bytes", "evicted_batches", "ingested_batches")
            if hasattr(stats, name)
        }
    cache.close()
    print("DONE " + json.dumps(result), flush=True)
    return 0


def _one_run(spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    with subprocess.Popen(
        [sys.executable, str(RUN_PY), "--ram-child", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"child did not start: {line!r} {process.stderr.read()}")  # type: ignore[union-attr]
        watcher = AnonWatcher(process)
        floor = rss_anon_bytes(process.pid)
        watcher.start()
        process.stdin.write("GO\n")
        process.stdin.flush()
        line = process.stdout.readline()
        watch = watcher.stop()
        stderr = process.stderr.read()  # type: ignore[union-attr]
        process.wait()
    if not line.startswith("DONE"):
        raise RuntimeError(f"child failed: {stderr.strip()[-2000:]}")
    result = json.loads(line[len("DONE ") :])
    if result["rows"] != result["expected_rows"]:
        raise AssertionError(f"child read {result['rows']} rows of {result['expected_rows']}")
    return {
        "peak_extra": max(0, watch.peak_bytes - floor),
        "floor": floor,
        "samples": watch.samples,
        "stats": result.get("stats"),
    }


def _peak_ram_row(
    ctx: CaseContext, case_id: str, title: str, spec: dict[str, Any], data_bytes: int
) -> dict[str, Any]:
    """Run the workload ``spec`` in ``ctx.ram_runs`` child processes; the row of their peaks."""
    runs: list[dict[str, Any]] = []
    for _ in range(ctx.ram_runs):
        ctx.tmp_root.mkdir(parents=True, exist_ok=True)
        directory = tempfile.mkdtemp(prefix="ram-", dir=ctx.tmp_root)
        try:
            runs.append(_one_run({**spec, "dir": directory}))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return case_row(
        case_id=case_id,
        title=title,
        baseline_label="size of the data",
        subject_label="peak RssAnon - RssAnon before the workload",
        baseline=[float(data_bytes)] * len(runs),
        subject=[float(run["peak_extra"]) for run in runs],
        unit="bytes",
        metric="fraction",
        target_op="<",
        target_value=0.10,
        target_text="< 10% of the data size",
        data_bytes=data_bytes,
        extra={
            "floor_bytes": [run["floor"] for run in runs],
            "samples": [run["samples"] for run in runs],
            "stats": runs[-1]["stats"],
        },
    )


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Measure peak extra anonymous RAM of both bounded-memory modes.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, sizes and the number of child runs.

    Returns
    -------
    list of dict
        One row per case; figures are bytes.
    """
    sizes = ctx.sizes
    total = sizes.ram_bytes
    gib = total / (1 << 30)
    scaled = "" if total == 2 << 30 else " (scaled down by --quick)"
    cases = [
        (
            "ram.max_readers",
            f"peak extra RAM, max_readers=2 lock-step readers, memory mode, {gib:g} GiB{scaled}",
            "max_readers",
        ),
        (
            "ram.disk_hot",
            f"peak extra RAM, disk mode, {sizes.ram_hot_bytes >> 20} MiB hot layer, "
            f"ingest + replay {gib:g} GiB{scaled}",
            "disk_hot",
        ),
    ]
    rows: list[dict[str, Any]] = []
    data_bytes = (total // data.ROW_BYTES) * data.ROW_BYTES
    for case_id, title, kind in cases:
        spec = {"case": kind, "bytes": total, "hot_bytes": sizes.ram_hot_bytes}
        row = functools.partial(_peak_ram_row, ctx, case_id, title, spec, data_bytes)
        rows.append(row_or_error(case_id, title, row))
    return rows
