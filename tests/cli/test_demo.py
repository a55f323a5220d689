"""``batchcorder demo``: the upstream is read once and every engine gives the same answers."""

from __future__ import annotations

import re
from pathlib import Path

SMALL = ("--rows", "20000", "--batch-rows", "4000", "--rounds", "2", "-q")


def answers(report: str) -> str:
    """The part of the report that must not change from run to run."""
    return report[report.index("answers (") : report.index("cache stats:")]


def run_demo(command, *options: object) -> str:
    result = command("demo", *SMALL, *options)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.text


def test_small_demo_reads_upstream_once_and_engines_agree(command):
    report = run_demo(command)
    assert "upstream batches produced before the first read: 0" in report
    assert "upstream batches produced: 5, each exactly once" in report
    assert "every engine gave the same answers" in report
    for engine in ("duckdb", "polars", "datafusion"):
        # four questions per engine, each with its two timed rounds
        assert len(re.findall(rf"^{engine} +Q\d +\d+ +[\d.]+ +[\d.]+$", report, re.M)) == 4
    assert "ingested_rows       20,000" in report
    assert "memory_batches      5" in report
    assert "to 24 queries" in report


def test_demo_is_deterministic(command):
    first, second = (run_demo(command, "--engines", "duckdb") for _ in range(2))
    assert answers(first) == answers(second)
    assert "revenue" in answers(first)
    assert answers(run_demo(command, "--engines", "duckdb", "--seed", "7")) != answers(first)


def test_demo_in_disk_mode(command, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    report = run_demo(command, "--engines", "duckdb,datafusion", "--disk", cache_dir)
    assert f"disk mode in {cache_dir}" in report
    assert "disk_batches        5" in report
    assert "each exactly once" in report
    assert not cache_dir.exists()


def test_default_demo(cli):
    """The defaults, in a process of its own; how long it takes is for benchmarks/."""
    result = cli("demo")
    assert result.returncode == 0, result.stderr
    assert "2,000,000 synthetic events" in result.text
    assert "upstream batches produced: 31, each exactly once" in result.text
    assert result.stderr == ""
    # The output the command-line page shows is this output: every line of it
    # that holds no time is printed as shown.
    page = (Path(__file__).parents[2] / "docs" / "how-to" / "cli.md").read_text()
    shown = page[page.index("$ batchcorder demo\n") :].split("```", 1)[0].splitlines()[1:]
    printed = set(result.text.splitlines())
    timeless = [
        line for line in shown if "..." not in line and not re.search(r"\d\.\d+ m?s\b", line)
    ]
    timeless = [line for line in timeless if not re.search(r"\d+\.\d\s", line)]  # table rows
    assert len(timeless) >= 8
    assert [line for line in timeless if line not in printed] == []
