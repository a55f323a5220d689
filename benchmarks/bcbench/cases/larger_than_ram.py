"""Larger than RAM (opt-in): a ~40 GB stream in disk mode with a 256 MiB hot layer.

Run with ``python benchmarks/run.py --only larger_than_ram`` (``--big-gib N``
for another size; the default, 40 GiB, is beyond this machine's RAM). It
needs the stream's size in free disk space twice over in turn (the raw write
is removed before the cache is made).

Everything runs in one fresh child process (``run.py --big-child SPEC``), whose
anonymous RSS the parent samples throughout (:mod:`bcbench.memwatch`):

1. raw: pyarrow writes the stream to an Arrow IPC file (then removed);
2. ingest: ``StreamCache(stream, disk_path=..., memory_capacity=256 MiB)``
   and ``ingest_all()``;
3. ``batchcorder.register`` in DuckDB and a group by over the whole cache;
4. ``batchcorder.scan`` in Polars and a filter over the whole cache;
5. a full replay through ``cache.reader()``, summing every value.

The stream is the same in both writes: batches of 64K rows of the benchmark
schema, each with freshly copied buffers (copied from a pool of 16 generated
batches, so that generating the data costs little next to writing it).
Targets: it completes; anonymous RSS stays under 1 GiB; ingest runs at 0.8x
the raw write's rate or better. The files are removed however the run ends:
the child removes them on SIGINT and SIGTERM, dies with its parent
(``PR_SET_PDEATHSIG``), and the parent removes the directory afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, error_row
from bcbench.memwatch import AnonWatcher, rss_anon_bytes

BATCH_ROWS = 65_536
HOT_BYTES = 256 << 20
POOL = 16
RSS_LIMIT = 1 << 30
INGEST_TARGET = 0.8
RUN_PY = Path(__file__).resolve().parents[2] / "run.py"
PHASES = ("raw", "ingest", "duckdb", "polars", "replay")


def _fresh(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with every buffer copied: what an upstream producing new data hands over."""
    columns = []
    for column in batch.columns:
        buffers = [None if b is None else pa.py_buffer(b.to_pybytes()) for b in column.buffers()]
        columns.append(
            pa.Array.from_buffers(column.type, len(column), buffers, offset=column.offset)
        )
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _stream(total_bytes: int) -> tuple[pa.RecordBatchReader, int]:
    """A one-shot stream of about ``total_bytes``; returns it and its row count."""
    pool = data.make_batches(POOL * BATCH_ROWS, BATCH_ROWS)
    count = max(1, total_bytes // pool[0].nbytes)

    def generate() -> Iterator[pa.RecordBatch]:
        for index in range(count):
            yield _fresh(pool[index % POOL])

    return pa.RecordBatchReader.from_batches(data.SCHEMA, generate()), count * BATCH_ROWS


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def child_main(spec_json: str) -> int:
    """Run the five phases in this fresh process; print one line per phase.

    Parameters
    ----------
    spec_json : str
        ``{"bytes": N, "dir": PATH}``.

    Returns
    -------
    int
        Process exit code.
    """
    _die_with_parent()
    signal.signal(signal.SIGTERM, _interrupt)
    import duckdb
    import polars as pl

    import batchcorder

    spec = json.loads(spec_json)
    directory = Path(spec["dir"])
    raw_path = directory / "raw.arrow"
    cache = None
    try:
        print(f"READY {rss_anon_bytes()}", flush=True)
        reader, total_rows = _stream(spec["bytes"])
        start = time.perf_counter()
        with pa.OSFile(str(raw_path), "wb") as sink, pa.ipc.new_file(sink, reader.schema) as out:
            for batch in reader:
                out.write_batch(batch)
        raw_bytes = raw_path.stat().st_size
        _phase("raw", start, {"bytes": raw_bytes})
        raw_path.unlink()

        reader, total_rows = _stream(spec["bytes"])
        start = time.perf_counter()
        cache = batchcorder.StreamCache(
            reader,
            memory_capacity=HOT_BYTES,
            disk_path=directory / "cache",
            disk_capacity=2 * spec["bytes"] + (1 << 30),
        )
        cache.ingest_all()
        _phase("ingest", start, {"bytes": cache.stats.disk_bytes})

        start = time.perf_counter()
        con = duckdb.connect()
        batchcorder.register(con, "t", cache)
        groups = con.sql("SELECT tag, count(*) AS n, sum(value) FROM t GROUP BY tag").fetchall()
        con.close()
        if sum(row[1] for row in groups) != total_rows:
            raise AssertionError("the DuckDB group by lost rows")
        _phase("duckdb", start, {"groups": len(groups)})

        start = time.perf_counter()
        kept = (
            batchcorder.scan(cache)
            .filter(pl.col("value") > 0.999)
            .select(pl.len().alias("n"), pl.col("value").sum().alias("s"))
            .collect()
        )
        _phase("polars", start, {"rows": int(kept["n"][0])})

        start = time.perf_counter()
        rows = _replay(cache, total_rows, sum(row[2] or 0.0 for row in groups))
        _phase("replay", start, {"rows": rows})
    finally:
        if cache is not None:
            cache.close()
        raw_path.unlink(missing_ok=True)
    print("DONE", flush=True)
    return 0


def _replay(cache: Any, total_rows: int, duckdb_sum: float) -> int:
    """Read every value of ``cache`` once; its row count, checked against the other phases.

    A replay that only counted rows would read nothing: the batches are views
    of the file.
    """
    rows, total = 0, 0.0
    for batch in cache.reader():
        rows += batch.num_rows
        total += pc.sum(batch.column("value")).as_py() or 0.0
    if rows != total_rows:
        raise AssertionError(f"the replay read {rows} rows of {total_rows}")
    if not math.isclose(total, duckdb_sum, rel_tol=1e-9):
        raise AssertionError(f"the replay summed {total}, DuckDB {duckdb_sum}")
    return rows


def _phase(name: str, start: float, extra: dict[str, Any]) -> None:
    seconds = time.perf_counter() - start
    print("PHASE " + json.dumps({"phase": name, "seconds": seconds, **extra}), flush=True)


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the child, sampling its anonymous RSS; return phases and the peak per phase."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    with subprocess.Popen(
        [sys.executable, str(RUN_PY), "--big-child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        try:
            line = process.stdout.readline()
            if not line.startswith("READY"):
                raise RuntimeError(f"child did not start: {line!r} {process.stderr.read()}")
            watcher = AnonWatcher(process)
            watcher.start()
            phases: dict[str, dict[str, Any]] = {}
            peak_before = 0
            for line in process.stdout:
                if line.startswith("PHASE "):
                    phase = json.loads(line[len("PHASE ") :])
                    # The peak so far, read at the phase's end: the highest of
                    # this phase is at most that.
                    phase["rss_anon_peak"] = max(watcher.watch.peak_bytes, peak_before)
                    peak_before = phase["rss_anon_peak"]
                    phases[phase["phase"]] = phase
                elif line.startswith("DONE"):
                    break
            watch = watcher.stop()
            process.wait()
        except BaseException:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        stderr = process.stderr.read()
    if set(phases) != set(PHASES):
        raise RuntimeError(f"child stopped after {list(phases)}: {stderr.strip()[-2000:]}")
    return {"phases": phases, "peak": watch.peak_bytes, "samples": watch.samples}


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Ingest, query and replay a stream larger than RAM; one row per target.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, sizes and where the files go.

    Returns
    -------
    list of dict
    """
    if ctx.impl.is_reference:
        return []
    total = ctx.sizes.big_bytes
    gib = total / (1 << 30)
    title = f"larger than RAM: {gib:g} GiB stream, disk mode, {HOT_BYTES >> 20} MiB hot layer"
    ctx.tmp_root.mkdir(parents=True, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="big-", dir=ctx.tmp_root)
    try:
        result = _run_child({"bytes": total, "dir": directory})
    except Exception as error:
        return [error_row("big.ingest", title, error)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    phases = result["phases"]
    seconds = {name: round(phase["seconds"], 1) for name, phase in phases.items()}
    note = (
        f"larger than RAM ({gib:g} GiB): raw write {seconds['raw']} s, ingest {seconds['ingest']} s, "
        f"DuckDB group by {seconds['duckdb']} s, Polars filter {seconds['polars']} s, full replay "
        f"{seconds['replay']} s; peak RssAnon at the end of each phase: "
        + ", ".join(f"{name} {phases[name]['rss_anon_peak'] >> 20} MiB" for name in PHASES)
    )
    return [
        case_row(
            case_id="big.ingest",
            title=f"{title}: ingest rate",
            baseline_label="pyarrow IPC file write of the same stream",
            subject_label="StreamCache(...).ingest_all()",
            baseline=[phases["raw"]["seconds"]],
            subject=[phases["ingest"]["seconds"]],
            metric="rate_ratio",
            target_op=">=",
            target_value=INGEST_TARGET,
            target_text=f">= {INGEST_TARGET}x raw write rate",
            data_bytes=phases["ingest"]["bytes"],
            note=note,
            extra={"phases": phases},
        ),
        case_row(
            case_id="big.rss",
            title=f"{title}: peak RssAnon over ingest, DuckDB group by, Polars filter, replay",
            baseline_label="1 GiB",
            subject_label="peak RssAnon of the process",
            baseline=[float(RSS_LIMIT)],
            subject=[float(result["peak"])],
            unit="bytes",
            metric="fraction",
            target_op="<",
            target_value=1.0,
            target_text="< 1 GiB anonymous RSS",
            extra={"samples": result["samples"]},
        ),
    ]
