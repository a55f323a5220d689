"""``batchcorder demo``: one synthetic stream, one cache, three engines, several rounds.

The upstream is a deterministic one-shot stream of event rows
(:class:`~batchcorder._cli.synthetic.EventStream`) that counts the batches it
hands out. The cache ingests it once; then DuckDB, Polars and DataFusion each
answer the same questions over that one cache, round after round, and the
demo prints each query's engine, time and rows, the answers, the cache's
stats and how many batches the upstream produced: each exactly once.
"""

from __future__ import annotations

import argparse
import decimal
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from batchcorder._cli.arguments import ENGINES, count, engine_list
from batchcorder._cli.errors import CLIError, standard_streams
from batchcorder._cli.sizes import format_size
from batchcorder._cli.sources import BATCH_ROWS

__all__ = ["QUESTIONS", "add_demo_parser", "run_demo"]


#: What the demo asks every engine, in this order: a short label and SQL over table ``src``.
QUESTIONS = {
    "overview": "SELECT count(*) AS events, count(DISTINCT user_id) AS users, "
    "round(sum(amount), 2) AS revenue FROM src",
    "funnel": "SELECT event_type, count(*) AS events FROM src GROUP BY event_type "
    "ORDER BY events DESC",
    "top countries": "SELECT country, count(*) AS purchases, round(sum(amount), 2) AS revenue "
    "FROM src WHERE event_type = 'purchase' GROUP BY country ORDER BY revenue DESC LIMIT 5",
    "devices": "SELECT device, count(*) AS events, round(avg(duration_ms), 1) AS avg_duration_ms "
    "FROM src GROUP BY device ORDER BY device",
}

#: How close two engines' floats must be to count as the same answer: engines
#: sum in different orders, which changes the last digits, not the ninth.
_FLOAT_TOLERANCE = 1e-9

#: The demo's rows: enough for timings well above the noise, a few seconds
#: on a laptop, and over 30 batches of BATCH_ROWS.
DEMO_ROWS = 2_000_000
#: The seed of the synthetic data: any fixed value makes runs comparable.
DEMO_SEED = 42
#: Times each question is asked: the first round reads the cache cold.
DEMO_ROUNDS = 3
#: Default disk-mode budgets of the demo.
DEMO_DISK_CAPACITY = 4 * 1024**3
DEMO_MEMORY_CAPACITY = 32 * 1024**2


def add_demo_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to ``commands`` (what ``add_subparsers`` returned)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="query a synthetic stream with DuckDB, Polars and DataFusion over one cache, "
        "and show that the stream was read exactly once",
        description="Ingest a deterministic synthetic event stream into one cache, then ask "
        "DuckDB, Polars and DataFusion the same questions over it, several rounds; print "
        "timings, answers and the cache's stats. Needs no network and no files. With --disk, "
        f"--disk-capacity defaults to {DEMO_DISK_CAPACITY // 1024**3}GiB and --memory-capacity "
        f"to {DEMO_MEMORY_CAPACITY // 1024**2}MiB, so most batches are read back from the file.",
    )
    parser.add_argument(
        "--rows", type=count(1), default=DEMO_ROWS, help=f"synthetic rows (default {DEMO_ROWS})"
    )
    parser.add_argument(
        "--batch-rows",
        type=count(1),
        default=BATCH_ROWS,
        help=f"rows per batch (default {BATCH_ROWS})",
    )
    parser.add_argument(
        "--rounds",
        type=count(1),
        default=DEMO_ROUNDS,
        help=f"times each engine asks each question (default {DEMO_ROUNDS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEMO_SEED,
        help=f"seed of the synthetic data (default {DEMO_SEED})",
    )
    parser.add_argument(
        "--engines",
        type=engine_list,
        default=list(ENGINES),
        metavar="LIST",
        help="comma-separated engines (default duckdb,polars,datafusion)",
    )
    parser.set_defaults(run=run_demo)
    return parser


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo and print its report to standard output; return 0.

    The options are those of ``batchcorder demo --help``; engines that are
    not installed are skipped with a note, and :class:`CLIError` raised if
    none is.
    """
    from batchcorder._cli.caching import cache_session, format_stats, ingest
    from batchcorder._cli.sources import Source
    from batchcorder._cli.synthetic import EventStream

    out, stderr = standard_streams(args.stdout, args.stderr)
    rows, batch_rows, rounds, disk = args.rows, args.batch_rows, args.rounds, args.disk
    disk_capacity, memory_capacity = args.disk_capacity, args.memory_capacity

    def write(text: str) -> None:
        out.write(text.encode())
        out.flush()

    if disk is not None:
        disk_capacity = DEMO_DISK_CAPACITY if disk_capacity is None else disk_capacity
        memory_capacity = DEMO_MEMORY_CAPACITY if memory_capacity is None else memory_capacity
    stream = EventStream(rows, batch_rows=batch_rows, seed=args.seed)
    upstream = stream.reader()
    with cache_session(upstream, disk, disk_capacity, memory_capacity) as cache:
        mode = (
            "memory mode"
            if disk is None
            else (
                f"disk mode in {disk} (file budget {format_size(disk_capacity or 0)}, "
                f"{format_size(memory_capacity or 0)} kept in RAM)"
            )
        )
        write(
            f"batchcorder demo: {rows:,} synthetic events, seed {args.seed}, "
            f"in batches of {batch_rows:,} rows\n"
            f"cache: {mode}\n"
            f"upstream batches produced before the first read: {stream.batches_produced}\n"
        )
        source = Source(upstream, "the synthetic stream", "synthetic", total_rows=rows)
        started = time.perf_counter()
        ingest(cache, source, stderr, quiet=args.quiet, disk_capacity=disk_capacity)
        stats = cache.stats
        write(
            f"ingested {stats.ingested_rows:,} rows in {stats.ingested_batches:,} batches "
            f"({format_size(stats.ingested_bytes)}) in {time.perf_counter() - started:.2f} s; "
            f"upstream batches produced: {stream.batches_produced}\n\n"
        )
        sessions = _open_engines(args.engines, cache, write)
        try:
            timings, answers = _ask(sessions, rounds)
        finally:
            for session in sessions:
                session.close()
        _report(sessions, rounds, timings, answers, write)
        stats = cache.stats
        write("\ncache stats:\n" + format_stats(stats) + "\n")
        once = (
            "each exactly once"
            if stream.batches_produced == stats.ingested_batches
            else (f"but the cache ingested {stats.ingested_batches}")
        )
        write(
            f"upstream batches produced: {stream.batches_produced}, {once}; "
            f"the cache served {stats.readers_created} readers to "
            f"{len(sessions) * rounds * len(QUESTIONS)} queries\n"
        )
    return 0


def _open_engines(names: Sequence[str], cache: Any, write: Callable[[str], None]) -> list[Any]:
    from batchcorder._cli.engines import open_engine

    sessions = []
    for name in names:
        try:
            session = open_engine(name)
        except CLIError as error:
            write(f"skipping {name}: {error}\n")
        else:
            session.register("src", cache)
            sessions.append(session)
    if not sessions:
        raise CLIError("no engine is available: pip install 'batchcorder[all]'")
    return sessions


def _ask(
    sessions: list[Any], rounds: int
) -> tuple[dict[tuple[str, int], list[float]], dict[str, list[Any]]]:
    """Every round, every engine, every question: time it and keep the answer (a pa.Table)."""
    from batchcorder._cli.engines import run_statement

    timings: dict[tuple[str, int], list[float]] = {}
    answers: dict[str, list[Any]] = {}
    for _ in range(rounds):
        for session in sessions:

            def run_round(session: Any = session) -> None:
                for number, sql in enumerate(QUESTIONS.values(), start=1):
                    begun = time.perf_counter()
                    table = run_statement(session, number, sql, _read_all)
                    assert table is not None
                    took = (time.perf_counter() - begun) * 1000
                    timings.setdefault((session.name, number), []).append(took)
                    answers.setdefault(session.name, []).append(table)

            session.run(run_round)
    return timings, answers


def _read_all(reader: Any) -> Any:
    return reader.read_all()


def _report(
    sessions: list[Any],
    rounds: int,
    timings: dict[tuple[str, int], list[float]],
    answers: dict[str, list[Any]],
    write: Callable[[str], None],
) -> None:
    import pyarrow as pa

    from batchcorder._cli.output import format_table

    for number, (label, sql) in enumerate(QUESTIONS.items(), start=1):
        write(f"Q{number}  {label:<15}{sql}\n")
    columns: dict[str, list[Any]] = {"engine": [], "query": [], "rows": []}
    for round_number in range(1, rounds + 1):
        columns[f"round {round_number} ms"] = []
    for session in sessions:
        for number in range(1, len(QUESTIONS) + 1):
            columns["engine"].append(session.name)
            columns["query"].append(f"Q{number}")
            columns["rows"].append(answers[session.name][number - 1].num_rows)
            for round_number, took in enumerate(timings[(session.name, number)], start=1):
                # a decimal with one digit prints as 12.0, where a float prints 12
                columns[f"round {round_number} ms"].append(decimal.Decimal(f"{took:.1f}"))
    write("\n" + format_table(pa.table(columns), footer=False))

    reference = sessions[0].name
    agree = all(
        _same(answers[reference][i], answers[session.name][i])
        for session in sessions[1:]
        for i in range(len(answers[reference]))
    )
    verdict = "every engine gave the same answers" if agree else "ENGINES DISAGREE"
    write(f"\nanswers ({reference}, round 1; {verdict}):\n")
    for number, label in enumerate(QUESTIONS, start=1):
        write(f"\nQ{number} {label}\n")
        write(format_table(answers[reference][number - 1], footer=False))


def _same(left: Any, right: Any) -> bool:
    """Whether two answers hold the same rows, by value, floats within 1e-9."""
    if left.shape != right.shape:
        return False
    for row_left, row_right in zip(left.to_pylist(), right.to_pylist(), strict=True):
        for a, b in zip(row_left.values(), row_right.values(), strict=True):
            if isinstance(a, float) and isinstance(b, float):
                if not math.isclose(a, b, rel_tol=_FLOAT_TOLERANCE):
                    return False
            elif a != b:
                return False
    return True
