"""Render a run (the ``--json`` payload) as markdown and publish it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bcbench import report
from bcbench.machine import one_line

README_START = "<!-- latest-results:start -->"
README_END = "<!-- latest-results:end -->"
REPO_ROOT = Path(__file__).resolve().parents[2]
ANALYSIS_PATH = REPO_ROOT / "benchmarks" / "analysis.md"
"""Hand-written analysis of the missed targets, appended to docs/benchmarks.md."""

RATIO_LEGEND = (
    "Ratio column: time cases give our time / baseline time (lower is better); ingest gives "
    "our rate / raw write rate; threads give total throughput of N threads / one thread; "
    "replay cases add the per-batch overhead (our time - baseline time) / batches; RAM cases "
    "give peak extra anonymous RSS / data size. *0.1.3 ratio* is the reference against the "
    "baseline measured in its own worker. *Speedup vs 0.1.3* is 0.1.3's ratio / our ratio "
    "(each side normalised by its own same-run baseline, which cancels load differences "
    "between the two workers; raw medians for the thread cases, whose baseline is the "
    "library itself); above 1 means we are faster or leaner."
)


def _short(location: str) -> str:
    """``location`` relative to the repository when it lies inside it."""
    path = Path(location)
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return location


def _header(payload: dict[str, Any]) -> list[str]:
    machine = payload["machine"]
    sizes = payload["sizes"]
    plan = payload["config"]["plan"]
    scaled = ""
    if payload["mode"] == "quick":
        scaled = (
            f"; peak-RAM cases scaled from 2 GiB to {sizes['ram_bytes'] >> 20} MiB "
            f"(hot layer {sizes['ram_hot_bytes'] >> 20} MiB)"
        )
    ours = payload["ours"]
    ref = payload.get("reference")
    if ref:
        reference = f"batchcorder {ref['version']} from `{_short(ref['location'])}`"
    else:
        reference = f"not measured ({payload.get('reference_hint', 'not run')})"
    load = f"load average {machine['load_average']} at start"
    if "load_average_end" in machine:
        load += f", {machine['load_average_end']} at end"
    return [
        f"- Date: {payload['date']} ({payload['mode']} mode{scaled}; "
        f"took {payload['elapsed_s']:.0f} s)",
        f"- Machine: {one_line(machine)}; {load}",
        f"- Measured: batchcorder {ours.get('version', '?')} from "
        f"`{_short(ours.get('location', '?'))}`",
        f"- Reference: {reference}",
        f"- Each figure is the median of {plan['runs']} runs after {plan['warmup']} warm-up "
        "run(s); baseline and subject alternate within one worker process, so every ratio "
        "compares figures of the same run. Peak-RAM figures are medians over "
        f"{payload['config']['ram_runs']} fresh processes.",
    ]


def render(payload: dict[str, Any]) -> str:
    """Return the markdown report of one run.

    Parameters
    ----------
    payload : dict
        What ``run.py --json`` writes: machine, config, raw rows of both sides.

    Returns
    -------
    str
    """
    with_reference = bool(payload.get("reference"))
    outcomes = report.evaluate(
        payload["rows"], payload["reference_rows"] if with_reference else None
    )
    parts = [
        "# batchcorder benchmarks",
        "",
        *_header(payload),
        "",
        report.markdown_table(outcomes, with_reference=with_reference),
        "",
        "**Summary:** " + report.summary(outcomes),
    ]
    notes = report.notes(outcomes)
    if notes:
        parts += ["", "**Notes:**", notes]
    parts += ["", RATIO_LEGEND]
    return "\n".join(parts) + "\n"


def write_docs(text: str, docs_path: Path, readme_path: Path) -> list[Path]:
    """Write the report to ``docs_path`` and into the README's results section.

    ``docs_path`` gets the report followed by ``benchmarks/analysis.md``;
    the README gets the report without its title, between the
    ``latest-results`` markers.

    Returns
    -------
    list of Path
        The files written.
    """
    written = []
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    analysis = ANALYSIS_PATH.read_text() if ANALYSIS_PATH.exists() else ""
    docs_path.write_text(text + ("\n" + analysis if analysis else ""))
    written.append(docs_path)
    if readme_path.exists():
        readme = readme_path.read_text()
        if README_START in readme and README_END in readme:
            head, rest = readme.split(README_START, 1)
            _, tail = rest.split(README_END, 1)
            body = text.split("\n", 2)[2]  # without the document title
            readme_path.write_text(f"{head}{README_START}\n{body}{README_END}{tail}")
            written.append(readme_path)
    return written
