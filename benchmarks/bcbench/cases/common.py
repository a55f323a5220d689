"""What every case module shares: its context and the shape of a result row."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bcbench.impl import Implementation
from bcbench.timing import Pair, Plan


@dataclass(frozen=True)
class Sizes:
    """Data sizes of one harness mode (full or ``--quick``).

    Attributes
    ----------
    rows : int
        Rows of the main data set (5M in both modes).
    big_batch_rows : int
        Rows per batch of the main data set (64K).
    small_batches : int
        Number of batches of the small-batch replay case.
    small_batch_rows : int
        Rows per batch of the small-batch replay case.
    ram_bytes : int
        Data size of the peak-RAM cases.
    ram_hot_bytes : int
        Hot layer of the disk-mode peak-RAM case.
    threads : int
        Reader threads of the concurrency case.
    warm_rows : int
        Rows of the time-ordered data set of the warm-query and cold-start cases.
    ingest_batches : int
        Batches of the ingestion-overhead case.
    ingest_batch_rows : int
        Rows per batch of the ingestion-overhead case.
    big_bytes : int
        Data size of the opt-in larger-than-RAM case.
    """

    rows: int
    big_batch_rows: int
    small_batches: int
    small_batch_rows: int
    ram_bytes: int
    ram_hot_bytes: int
    threads: int
    warm_rows: int = 20_000_000
    ingest_batches: int = 2_000
    ingest_batch_rows: int = 1_000
    big_bytes: int = 40 << 30

    def to_dict(self) -> dict[str, int]:
        """Return the sizes as a JSON-ready dict."""
        return dict(self.__dict__)


FULL = Sizes(
    rows=5_000_000,
    big_batch_rows=65_536,
    small_batches=1_000,
    small_batch_rows=1_000,
    ram_bytes=2 << 30,
    ram_hot_bytes=64 << 20,
    threads=4,
)
"""The full run's sizes."""

QUICK = replace(FULL, ram_bytes=256 << 20, ram_hot_bytes=8 << 20, warm_rows=5_000_000)
"""``--quick``: same sizes except the 2 GB peak-RAM cases, scaled to 256 MB
(hot layer scaled alike to 8 MB so the hot-layer share of the data is kept),
and the warm-query and cold-start data set, 5M rows instead of 20M."""


@dataclass(frozen=True)
class CaseContext:
    """Everything a case module needs.

    Attributes
    ----------
    impl : Implementation
        The ``batchcorder`` of this process.
    plan : Plan
        Runs, warm-up and calibration of timed cases.
    sizes : Sizes
        Data sizes.
    tmp_root : Path
        Where disk-mode caches and baseline files go.
    ram_runs : int
        Child processes per peak-RAM case.
    """

    impl: Implementation
    plan: Plan
    sizes: Sizes
    tmp_root: Path
    ram_runs: int

    @contextmanager
    def scratch_dir(self, prefix: str) -> Iterator[Path]:
        """Yield an empty directory under ``tmp_root``, removed afterwards."""
        self.tmp_root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp_root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def case_row(
    *,
    case_id: str,
    title: str,
    baseline_label: str,
    subject_label: str,
    pair: Pair | None = None,
    baseline: list[float] | None = None,
    subject: list[float] | None = None,
    metric: str,
    target_op: str,
    target_value: float,
    target_text: str,
    unit: str = "s",
    ref_key: str | None = None,
    ref_speedup_min: float | None = None,
    n_batches: int | None = None,
    threads: int | None = None,
    data_bytes: int | None = None,
    note: str | None = None,
    extra: dict[str, Any] | None = None,
    baseline_shared: bool = True,
) -> dict[str, Any]:
    """Build one result row (raw figures only; the report derives the rest).

    Parameters
    ----------
    case_id : str
        Stable identifier, also the key in ``--json`` output.
    title : str
        Human-readable case description.
    baseline_label, subject_label : str
        What was measured on each side.
    pair : Pair, optional
        Interleaved timings; alternatively pass ``baseline``/``subject``.
    baseline, subject : list of float, optional
        Per-run figures (seconds, or bytes when ``unit == "bytes"``).
    metric : str
        How the report turns the figures into the compared number:
        ``time_ratio`` (subject/baseline), ``rate_ratio`` (baseline/subject),
        ``throughput_ratio`` (threads * baseline / subject), ``overhead_us``
        ((subject - baseline) / n_batches, in microseconds) or ``fraction``
        (subject / baseline).
    target_op : str
        ``"<"``, ``"<="`` or ``">="``.
    target_value : float
        Threshold of the metric.
    target_text : str
        The target as printed.
    unit : str
        ``"s"`` or ``"bytes"``.
    ref_key : str, optional
        Key matching the reference row to compare with (defaults to
        ``case_id``); several of our registration paths share one key.
    ref_speedup_min : float, optional
        Required speedup over the reference, if the case has one.
    n_batches, threads, data_bytes : int, optional
        Inputs of the metric.
    note : str, optional
        Printed under the table.
    extra : dict, optional
        Free-form figures kept in the JSON output.
    baseline_shared : bool
        Whether the baseline is the same operation for us and the reference
        (then speedups are computed from baseline-normalised figures).

    Returns
    -------
    dict
    """
    if pair is not None:
        baseline, subject = pair.baseline, pair.subject
    return {
        "id": case_id,
        "title": title,
        "baseline_label": baseline_label,
        "subject_label": subject_label,
        "baseline": baseline or [],
        "subject": subject or [],
        "unit": unit,
        "metric": metric,
        "target": {"op": target_op, "value": target_value, "text": target_text},
        "ref_key": ref_key or case_id,
        "ref_speedup_min": ref_speedup_min,
        "n_batches": n_batches,
        "threads": threads,
        "data_bytes": data_bytes,
        "number": pair.number if pair is not None else 1,
        "note": note,
        "extra": extra or {},
        "baseline_shared": baseline_shared,
    }


def error_row(case_id: str, title: str, error: BaseException) -> dict[str, Any]:
    """Build a row for a case that raised, so the table still lists it."""
    return {
        "id": case_id,
        "title": title,
        "ref_key": case_id,
        "error": f"{type(error).__name__}: {error}",
    }


def row_or_error(
    case_id: str, title: str, build_row: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Measure one case: ``build_row()``, or its :func:`error_row` if measuring raised.

    Every case runs this way, so that one failing case still lists in the
    table and the others run.
    """
    try:
        return build_row()
    except Exception as error:
        return error_row(case_id, title, error)
