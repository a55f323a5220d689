"""Interleaved timing of a baseline and a subject.

Both sides of a comparison are timed in the same process, alternating
baseline/subject (and swapping the order every run), so a noisy neighbour or
frequency drift hits both about equally. Each run is preceded by a full
garbage collection (of objects created since the previous one) and runs with
the collector disabled. Micro operations are
repeated ``number`` times inside one run (calibrated so a run lasts at least
``min_run_s``); the figure recorded is seconds per operation.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Bench:
    """One side of a comparison.

    Attributes
    ----------
    op : callable
        The operation whose duration is measured.
    setup : callable, optional
        Untimed preparation run before every timed run (for example a fresh
        source stream and an empty directory).
    teardown : callable, optional
        Untimed cleanup run after every timed run.
    repeatable : bool
        Whether ``op`` may run several times back to back inside one timed
        run. Operations that consume their setup must say ``False``.
    """

    op: Callable[[], object]
    setup: Callable[[], None] | None = None
    teardown: Callable[[], None] | None = None
    repeatable: bool = True


@dataclass
class Plan:
    """How many times to run and for how long.

    Attributes
    ----------
    runs : int
        Recorded runs per side (the median is over these).
    warmup : int
        Unrecorded runs per side done first.
    min_run_s : float
        Calibration target: a repeatable run lasts at least this long.
    """

    runs: int = 5
    warmup: int = 1
    min_run_s: float = 0.05


@dataclass
class Pair:
    """Seconds per operation of both sides, one entry per recorded run."""

    baseline: list[float] = field(default_factory=list)
    subject: list[float] = field(default_factory=list)
    number: int = 1

    @property
    def baseline_median(self) -> float:
        """Median seconds per baseline operation."""
        return statistics.median(self.baseline)

    @property
    def subject_median(self) -> float:
        """Median seconds per subject operation."""
        return statistics.median(self.subject)


def _timed(bench: Bench, number: int) -> float:
    if bench.setup is not None:
        bench.setup()
    # Objects alive now are frozen so that later collections (one per run)
    # walk only what the runs allocate: a full collection of a heap holding
    # DuckDB, Polars and DataFusion takes ~20 ms.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            bench.op()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
        if bench.teardown is not None:
            bench.teardown()
    return elapsed / number


def _calibrate(bench: Bench, min_run_s: float) -> int:
    if not bench.repeatable:
        return 1
    number = 1
    while True:
        elapsed = _timed(bench, number) * number
        if elapsed >= min_run_s or number >= 1 << 20:
            return number
        # Aim 20% past the target so one calibration step usually suffices.
        grow = min_run_s * 1.2 / max(elapsed, 1e-7)
        number = max(number * 2, int(number * grow))


def measure_pair(baseline: Bench, subject: Bench, plan: Plan) -> Pair:
    """Time ``baseline`` and ``subject`` alternately.

    Parameters
    ----------
    baseline : Bench
        The reference operation (physical limit or established library).
    subject : Bench
        The operation under test.
    plan : Plan
        Runs, warm-up and calibration.

    Returns
    -------
    Pair
        Seconds per operation of every recorded run of both sides.
    """
    number = 1
    if baseline.repeatable and subject.repeatable:
        # One count for both sides, calibrated on the pair, so a fast baseline
        # is not repeated for many times the subject's duration.
        both = Bench(op=lambda: (baseline.op(), subject.op()))
        number = _calibrate(both, 2 * plan.min_run_s)
    pair = Pair(number=number)
    for run in range(plan.warmup + plan.runs):
        order = [(baseline, pair.baseline), (subject, pair.subject)]
        if run % 2:
            order.reverse()
        for bench, sink in order:
            seconds = _timed(bench, number)
            if run >= plan.warmup:
                sink.append(seconds)
    return pair
