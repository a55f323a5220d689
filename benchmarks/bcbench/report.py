"""Turn raw worker figures into ratios, PASS/MISS, markdown and JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bcbench.impl import REFERENCE_VERSION

_OPS = {
    "<": lambda value, limit: value < limit,
    "<=": lambda value, limit: value <= limit,
    ">=": lambda value, limit: value >= limit,
}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def metric_of(row: dict[str, Any]) -> tuple[float | None, float | None]:
    """Return ``(ratio, compared value)`` of a raw row.

    ``ratio`` is the number printed in the ratio column (see
    :func:`bcbench.cases.common.case_row` for each metric); the compared value
    is what the target applies to: the ratio itself, or the per-batch overhead
    in microseconds for ``overhead_us``.
    """
    base, subject = _median(row.get("baseline", [])), _median(row.get("subject", []))
    if base is None or subject is None or base <= 0 or subject <= 0:
        return None, None
    metric = row["metric"]
    if metric == "rate_ratio":
        return base / subject, base / subject
    if metric == "throughput_ratio":
        ratio = row["threads"] * base / subject
        return ratio, ratio
    if metric == "overhead_us":
        return subject / base, (subject - base) / row["n_batches"] * 1e6
    return subject / base, subject / base


@dataclass
class Outcome:
    """Derived figures of one of our rows, with its reference counterpart."""

    row: dict[str, Any]
    ratio: float | None = None
    value: float | None = None
    status: str = "ERROR"
    reasons: list[str] = field(default_factory=list)
    ref_row: dict[str, Any] | None = None
    ref_ratio: float | None = None
    ref_value: float | None = None
    speedup: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the row with derived figures, for ``--json``."""
        row = dict(self.row)
        row.update(
            baseline_median=_median(self.row.get("baseline", [])),
            subject_median=_median(self.row.get("subject", [])),
            ratio=self.ratio,
            value=self.value,
            status=self.status,
            reasons=self.reasons,
        )
        if self.ref_row is not None:
            row["reference"] = {
                "id": self.ref_row.get("id"),
                "baseline_median": _median(self.ref_row.get("baseline", [])),
                "subject_median": _median(self.ref_row.get("subject", [])),
                "ratio": self.ref_ratio,
                "value": self.ref_value,
                "speedup": self.speedup,
                "error": self.ref_row.get("error"),
            }
        return row


def _speedup(row: dict[str, Any], ref_row: dict[str, Any]) -> float | None:
    """Return how many times faster (or leaner) we are than the reference.

    When both sides' baselines are the same operation (a pa.Table scan, an
    IPC write, the data size), each side is first divided by the baseline
    measured in its own process: the two workers run at different moments on
    a shared machine, and the quotient of ratios cancels the load difference.
    Otherwise (thread scaling, whose baseline is the library itself) the raw
    medians are compared.
    """
    ours = _median(row.get("subject", []))
    ref = _median(ref_row.get("subject", []))
    if not ours or not ref:
        return None
    ours_base = _median(row.get("baseline", []))
    ref_base = _median(ref_row.get("baseline", []))
    if row.get("baseline_shared", True) and ours_base and ref_base:
        return (ref / ref_base) / (ours / ours_base)
    return ref / ours


def evaluate(ours: list[dict[str, Any]], reference: list[dict[str, Any]] | None) -> list[Outcome]:
    """Apply targets to our rows and pair each with its reference row.

    Parameters
    ----------
    ours : list of dict
        Raw rows from our workers.
    reference : list of dict, optional
        Raw rows from the reference workers; ``None`` if it was not run.

    Returns
    -------
    list of Outcome
    """
    by_key: dict[str, dict[str, Any]] = {}
    for row in reference or []:
        by_key.setdefault(row.get("ref_key", row["id"]), row)
    return [_evaluate_row(row, by_key.get(row.get("ref_key", row["id"]))) for row in ours]


def _evaluate_row(row: dict[str, Any], ref_row: dict[str, Any] | None) -> Outcome:
    """One row's outcome: its figures against its target and against the reference."""
    outcome = Outcome(row=row, ref_row=ref_row)
    if ref_row is not None and "error" not in ref_row:
        outcome.ref_ratio, outcome.ref_value = metric_of(ref_row)
        outcome.speedup = _speedup(row, ref_row)
    if "error" in row:
        outcome.reasons.append(row["error"])
        return outcome
    outcome.ratio, outcome.value = metric_of(row)
    passed = _meets_target(row, outcome)
    if row.get("ref_speedup_min") is not None:
        passed = _beats_reference(row, outcome) and passed
    outcome.status = "PASS" if passed else "MISS"
    return outcome


def _meets_target(row: dict[str, Any], outcome: Outcome) -> bool:
    """Whether the row's value meets its target; if not, the reason goes to ``outcome``."""
    target = row["target"]
    if outcome.value is not None and _OPS[target["op"]](outcome.value, target["value"]):
        return True
    reason = f"target {target['text']}"
    floor = (row.get("extra") or {}).get("floor_throughput_ratio")
    if floor is not None and not _OPS[target["op"]](floor, target["value"]):
        reason += f"; unreachable here: plain pyarrow reaches only {floor:.2f}x"
    outcome.reasons.append(reason)
    return False


def _beats_reference(row: dict[str, Any], outcome: Outcome) -> bool:
    """Whether the row is the required times faster than the reference; else a reason.

    A reference that was not measured is noted, and does not fail the row.
    """
    if outcome.speedup is None:
        outcome.reasons.append("reference not measured")
        return True
    if outcome.speedup >= row["ref_speedup_min"]:
        return True
    reason = f">= {row['ref_speedup_min']:g}x faster than 0.1.3"
    ref_time_ratio = outcome.ref_ratio
    if ref_time_ratio is not None and ref_time_ratio < row["ref_speedup_min"]:
        # Even a cache as cheap as the baseline would miss: say so.
        reason += (
            "; unreachable through this path: 0.1.3 takes only "
            f"{ref_time_ratio:.2f}x the baseline's time"
        )
    outcome.reasons.append(reason)
    return False


def fmt_seconds(seconds: float | None) -> str:
    """Format a duration with a unit suited to its size."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def fmt_bytes(count: float | None) -> str:
    """Format a byte count in binary units."""
    if count is None:
        return "-"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count:.0f} B"


def _fmt_figure(row: dict[str, Any], side: str) -> str:
    median = _median(row.get(side, []))
    if row.get("unit") == "bytes":
        return fmt_bytes(median)
    text = fmt_seconds(median)
    if side == "subject" and row.get("metric") == "overhead_us" and median is not None:
        text += f" ({median / row['n_batches'] * 1e6:.2f} us/batch)"
    return text


def _fmt_ratio(row: dict[str, Any], ratio: float | None, value: float | None) -> str:
    if ratio is None:
        return "-"
    if row["metric"] == "fraction":
        return f"{ratio:.1%}"
    digits = 2
    if row["metric"] != "overhead_us" and f"{ratio:.2f}" == f"{row['target']['value']:.2f}":
        digits = 3  # 1.30x printed next to a MISS of "within 1.3x" would look wrong
    text = f"{ratio:.{digits}f}x"
    if row["metric"] == "overhead_us" and value is not None:
        text += f", {value:+.2f} us/batch"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(outcomes: list[Outcome], with_reference: bool) -> str:
    """Render the results as one markdown table.

    Columns: case, baseline median, our median, ratio (as the target reads
    it), target, status and, when the reference ran, its median, its own ratio
    against the baseline it measured, and our speedup over it.
    """
    head = ["case", "baseline", "batchcorder", "ratio", "target", "status"]
    if with_reference:
        head += [REFERENCE_VERSION, f"{REFERENCE_VERSION} ratio", "speedup vs 0.1.3"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for outcome in outcomes:
        row = outcome.row
        if "error" in row:
            cells = [row["title"], "-", "-", "-", "-", f"ERROR: {row['error'][:160]}"]
        else:
            status = outcome.status
            if status == "MISS":
                status = "**MISS** (" + "; ".join(outcome.reasons) + ")"
            cells = [
                row["title"],
                f"{_fmt_figure(row, 'baseline')} ({row['baseline_label']})",
                _fmt_figure(row, "subject"),
                _fmt_ratio(row, outcome.ratio, outcome.value),
                row["target"]["text"],
                status,
            ]
        if with_reference:
            ref = outcome.ref_row
            if ref is None:
                cells += ["n/a", "-", "-"]
            elif "error" in ref:
                cells += [f"ERROR: {ref['error'][:80]}", "-", "-"]
            else:
                speedup = "-" if outcome.speedup is None else f"{outcome.speedup:.2f}x"
                cells += [
                    _fmt_figure(ref, "subject"),
                    _fmt_ratio(ref, outcome.ref_ratio, outcome.ref_value),
                    speedup,
                ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def summary(outcomes: list[Outcome]) -> str:
    """Return the PASS/MISS/ERROR counts and the list of missed cases."""
    counts = {status: 0 for status in ("PASS", "MISS", "ERROR")}
    for outcome in outcomes:
        counts[outcome.status] += 1
    lines = [", ".join(f"{count} {status}" for status, count in counts.items())]
    for outcome in outcomes:
        if outcome.status != "PASS":
            reason = "; ".join(outcome.reasons) or outcome.status
            lines.append(f"- {outcome.status} `{outcome.row['id']}`: {reason}")
    return "\n".join(lines)


def notes(outcomes: list[Outcome]) -> str:
    """Return the distinct per-case notes as a bullet list."""
    seen: list[str] = []
    for outcome in outcomes:
        note = outcome.row.get("note")
        if note and note not in seen:
            seen.append(note)
    return "\n".join(f"- {note}" for note in seen)
