"""Run every batchcorder benchmark and print one markdown table.

Usage::

    python benchmarks/run.py [--quick] [--json PATH] [--write-docs]
                             [--reference-python PATH | --no-reference]
                             [--setup-reference] [--only GROUP ...]

Each case group runs in a fresh worker process, once with this interpreter
(our ``batchcorder``) and once with the reference virtualenv's interpreter
(PyPI ``batchcorder`` 0.1.3, same import name), and the table puts both side
by side. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DOCS_PATH = REPO_ROOT / "docs" / "benchmarks.md"
README_PATH = BENCH_DIR / "README.md"
WORKER_TIMEOUT_S = 1800
OPT_IN_TIMEOUT_S = 4 * 3600
"""Opt-in groups move tens of GB through the disk: they get longer."""

if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from bcbench.cases import ALL_GROUPS, OPT_IN

    parser = argparse.ArgumentParser(
        description="Run the batchcorder benchmarks and print a markdown table."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="5 runs per case and 256 MiB instead of 2 GiB peak-RAM cases (< 2 min on 2 cores)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    parser.add_argument(
        "--reference-python",
        metavar="PATH",
        help="interpreter with PyPI batchcorder 0.1.3 (default: benchmarks/.reference-venv)",
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="do not run the reference library"
    )
    parser.add_argument(
        "--setup-reference",
        action="store_true",
        help="create benchmarks/.reference-venv with batchcorder 0.1.3 first",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="write the report to docs/benchmarks.md and benchmarks/README.md",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(ALL_GROUPS),
        metavar="GROUP",
        help=f"run only these groups (opt-in, run only when named: {', '.join(OPT_IN)})",
    )
    parser.add_argument(
        "--big-gib",
        type=float,
        default=40.0,
        help="data size of the opt-in larger_than_ram group, in GiB (default 40)",
    )
    parser.add_argument("--runs", type=int, help="recorded runs per case (default 5 / 7)")
    parser.add_argument(
        "--tmp-dir", metavar="DIR", help="where disk-mode files go (default: system temp dir)"
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="re-render the report of an earlier --json file instead of running",
    )
    parser.add_argument("--worker", metavar="GROUP", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--ram-child", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--big-child", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _config(args: argparse.Namespace, tmp_root: Path) -> dict[str, Any]:
    runs = args.runs or (5 if args.quick else 7)
    if runs < 5:
        print(f"warning: --runs {runs} is below the 5 runs the report promises", file=sys.stderr)
    plan = {
        "runs": runs,
        "warmup": 1 if args.quick else 2,
        "min_run_s": 0.03 if args.quick else 0.1,
    }
    return {
        "quick": args.quick,
        "plan": plan,
        "ram_runs": runs,
        "tmp_root": str(tmp_root),
        "big_bytes": int(args.big_gib * (1 << 30)),
    }


def _run_worker(python: str, group: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run one group in a fresh process of ``python``; return its document."""
    from bcbench.cases import OPT_IN

    timeout = OPT_IN_TIMEOUT_S if group in OPT_IN else WORKER_TIMEOUT_S
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [
        python,
        str(BENCH_DIR / "run.py"),
        "--worker",
        group,
        "--config",
        json.dumps(config),
        "--out",
        str(out),
    ]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=str(BENCH_DIR),
        )
        if completed.returncode != 0 or not out.stat().st_size:
            tail = (completed.stderr or completed.stdout).strip()[-1500:]
            return {
                "group": group,
                "rows": [],
                "error": f"worker exited {completed.returncode}: {tail}",
            }
        document: dict[str, Any] = json.loads(out.read_text())
        return document
    except subprocess.TimeoutExpired:
        return {"group": group, "rows": [], "error": f"worker timed out after {timeout}s"}
    finally:
        out.unlink(missing_ok=True)


def _our_rows(ours: dict[str, Any], ref: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return our rows; if our worker failed outright, list the reference's cases as errors."""
    if ours["rows"] or ref is None or not ref.get("rows"):
        rows: list[dict[str, Any]] = ours["rows"]
        if not rows and "error" in ours:
            rows = [{"id": ours["group"], "title": ours["group"], "error": ours["error"]}]
        return rows
    error = ours.get("error", "no result")
    return [
        {"id": row["id"], "title": row["title"], "ref_key": row["ref_key"], "error": error}
        for row in ref["rows"]
    ]


def _reference(args: argparse.Namespace) -> tuple[str | None, dict[str, Any] | None, str]:
    """Return (interpreter, probe result, hint when absent)."""
    from bcbench import reference

    hint = "run `python benchmarks/run.py --setup-reference` or pass --reference-python"
    if args.no_reference:
        return None, None, "--no-reference"
    try:
        if args.setup_reference:
            reference.setup()
        python = reference.find(args.reference_python)
        if python is None:
            return None, None, hint
        return str(python), reference.check_reference(python, BENCH_DIR / "run.py"), hint
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"warning: reference library unavailable: {error}", file=sys.stderr)
        return None, None, f"{error}; {hint}"


def _our_impl() -> dict[str, Any]:
    from bcbench import reference

    found = reference.probe(sys.executable, BENCH_DIR / "run.py")
    if "error" in found:
        return {"version": "not importable", "location": found["error"]}
    return found


def orchestrate(args: argparse.Namespace) -> int:
    """Run every selected group for both implementations and report."""
    from bcbench import report
    from bcbench.cases import GROUPS
    from bcbench.cases.common import FULL, QUICK
    from bcbench.machine import describe, one_line

    started = time.perf_counter()
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = describe()
    print(f"machine: {one_line(machine)}", flush=True)
    ref_python, ref_impl, ref_hint = _reference(args)
    ours_impl = _our_impl()
    print(f"ours: batchcorder {ours_impl['version']} ({ours_impl['location']})", flush=True)
    print(
        "reference: "
        + (f"batchcorder {ref_impl['version']} via {ref_python}" if ref_impl else ref_hint),
        flush=True,
    )
    tmp_parent = Path(args.tmp_dir) if args.tmp_dir else Path(tempfile.gettempdir())
    tmp_parent.mkdir(parents=True, exist_ok=True)
    groups = args.only or list(GROUPS)
    ours_rows: list[dict[str, Any]] = []
    ref_rows: list[dict[str, Any]] = []
    documents: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="batchcorder-bench-", dir=tmp_parent) as tmp_root:
        config = _config(args, Path(tmp_root))
        for group in groups:
            group_start = time.perf_counter()
            ours = _run_worker(sys.executable, group, config)
            ref = _run_worker(ref_python, group, config) if ref_python else None
            documents[group] = {"ours": ours, "reference": ref}
            ours_rows += _our_rows(ours, ref)
            if ref is not None:
                ref_rows += ref["rows"]
            status = f"ours {ours.get('seconds', '?')}s" + (
                f", reference {ref.get('seconds', '?')}s" if ref is not None else ""
            )
            for side, document in (("ours", ours), ("reference", ref)):
                if document is not None and "error" in document:
                    print(f"  {group} {side} error: {document['error'][:300]}", file=sys.stderr)
            print(
                f"[{group}] {status} (total {time.perf_counter() - group_start:.1f}s)", flush=True
            )
    outcomes = report.evaluate(ours_rows, ref_rows if ref_python else None)
    machine["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    payload = {
        "date": date,
        "mode": "quick" if args.quick else "full",
        "sizes": (QUICK if args.quick else FULL).to_dict(),
        "machine": machine,
        "config": {key: value for key, value in config.items() if key != "tmp_root"},
        "ours": ours_impl,
        "reference": ref_impl,
        "reference_hint": ref_hint,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "rows": ours_rows,
        "reference_rows": ref_rows,
        "results": [outcome.to_json() for outcome in outcomes],
        "worker_errors": {
            group: {side: doc.get("error") for side, doc in sides.items() if doc}
            for group, sides in documents.items()
        },
    }
    return _publish(args, payload)


def _publish(args: argparse.Namespace, payload: dict[str, Any]) -> int:
    """Print the report of ``payload``; write JSON and docs if asked."""
    from bcbench import document

    text = document.render(payload)
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.json}")
    if args.write_docs:
        for path in document.write_docs(text, DOCS_PATH, README_PATH):
            print(f"wrote {path}")
    return 0


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so that temporary files and directories are removed."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: orchestrator, worker or a case's child process, by arguments."""
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _terminated)
    if args.ram_child:
        from bcbench.cases.peak_ram import child_main

        return child_main(args.ram_child)
    if args.big_child:
        from bcbench.cases.larger_than_ram import child_main as big_child_main

        return big_child_main(args.big_child)
    if args.probe:
        from bcbench import impl

        loaded = impl.load()
        print(json.dumps({"version": loaded.version, "location": loaded.location}))
        return 0
    if args.worker:
        from bcbench.worker import main as worker_main

        return worker_main(args.worker, args.config, args.out)
    if args.render:
        return _publish(args, json.loads(Path(args.render).read_text()))
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
