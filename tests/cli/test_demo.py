"""``batchcorder demo``: one synthetic stream, three engines, read exactly once."""

from __future__ import annotations

import re
import time
from pathlib import Path

SMALL = ("demo", "--rows", 20_000, "--batch-rows", 4_096, "--rounds", 2)


def answers(report: str) -> str:
    """The part of the report that must not change from run to run."""
    return report[report.index("answers (") : report.index("cache stats:")]


def test_small_demo_reads_upstream_once_and_engines_agree(cli):
    result = cli(*SMALL)
    assert result.returncode == 0, result.stderr
    report = result.text
    assert "upstream batches produced before the first read: 0" in report
    assert "upstream batches produced: 5, each exactly once" in report
    assert "every engine gave the same answers" in report
    for engine in ("duckdb", "polars", "datafusion"):
        # four questions per engine, each with its two timed rounds
        assert len(re.findall(rf"^{engine} +Q\d +\d+ +[\d.]+ +[\d.]+$", report, re.M)) == 4
    assert "ingested_rows       20,000" in report
    assert "memory_batches      5" in report
    assert "to 24 queries" in report
    assert result.stderr == ""


def test_demo_is_deterministic(cli):
    first, second = cli(*SMALL, "--engines", "duckdb"), cli(*SMALL, "--engines", "duckdb")
    assert first.returncode == second.returncode == 0
    assert answers(first.text) == answers(second.text)
    assert "revenue" in answers(first.text)


def test_demo_in_disk_mode(cli, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    result = cli(*SMALL, "--engines", "duckdb,datafusion", "--disk", cache_dir)
    assert result.returncode == 0, result.stderr
    assert f"disk mode in {cache_dir}" in result.text
    assert "disk_batches        5" in result.text
    assert "each exactly once" in result.text
    assert not cache_dir.exists()


def test_default_demo_runs_well_under_a_minute(cli):
    started = time.monotonic()
    result = cli("demo")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert "2,000,000 synthetic events" in result.text
    assert "upstream batches produced: 31, each exactly once" in result.text
