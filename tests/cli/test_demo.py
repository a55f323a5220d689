"""``batchcorder demo``: one synthetic stream, three engines, read exactly once."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

from batchcorder._cli.demo import demo

SMALL = {"rows": 20_000, "batch_rows": 4_096, "rounds": 2}


def answers(report: str) -> str:
    """The part of the report that must not change from run to run."""
    return report[report.index("answers (") : report.index("cache stats:")]


def run_demo(**options: object) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert demo(**{**SMALL, **options}, stdout=out, stderr=err) == 0  # type: ignore[arg-type]
    assert err.getvalue() == ""
    return out.getvalue()


def test_small_demo_reads_upstream_once_and_engines_agree():
    report = run_demo()
    assert "upstream batches produced before the first read: 0" in report
    assert "upstream batches produced: 5, each exactly once" in report
    assert "every engine gave the same answers" in report
    for engine in ("duckdb", "polars", "datafusion"):
        # four questions per engine, each with its two timed rounds
        assert len(re.findall(rf"^{engine} +Q\d +\d+ +[\d.]+ +[\d.]+$", report, re.M)) == 4
    assert "ingested_rows       20,000" in report
    assert "memory_batches      5" in report
    assert "to 24 queries" in report


def test_demo_is_deterministic():
    first, second = run_demo(engines=["duckdb"]), run_demo(engines=["duckdb"])
    assert answers(first) == answers(second)
    assert "revenue" in answers(first)
    assert answers(run_demo(engines=["duckdb"], seed=7)) != answers(first)


def test_demo_in_disk_mode(tmp_path: Path):
    cache_dir = tmp_path / "cache"
    report = run_demo(engines=["duckdb", "datafusion"], disk=str(cache_dir))
    assert f"disk mode in {cache_dir}" in report
    assert "disk_batches        5" in report
    assert "each exactly once" in report
    assert not cache_dir.exists()


def test_default_demo_runs_well_under_a_minute(cli):
    started = time.monotonic()
    result = cli("demo")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert "2,000,000 synthetic events" in result.text
    assert "upstream batches produced: 31, each exactly once" in result.text
    assert result.stderr == ""
