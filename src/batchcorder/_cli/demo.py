"""``batchcorder demo``: one synthetic stream, one cache, three engines, several rounds."""

from __future__ import annotations

import argparse
import decimal
import math
import time
from collections.abc import Callable
from typing import Any

from batchcorder._cli.arguments import BATCH_ROWS, add_command, count
from batchcorder._cli.errors import CLIError, standard_streams
from batchcorder._cli.sizes import format_size
from batchcorder._engines import SQL_ENGINES

__all__ = ["QUESTIONS", "add_parser", "run_demo"]

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

DEMO_ROWS = 2_000_000
DEMO_SEED = 42
DEMO_ROUNDS = 3
#: The disk-mode budgets of the demo: most batches are read back from the file.
DEMO_DISK_CAPACITY = 4 * 1024**3
DEMO_MEMORY_CAPACITY = 32 * 1024**2


def _engine_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in SQL_ENGINES for name in names):
        raise argparse.ArgumentTypeError(
            f"invalid engines {text!r}: use a comma-separated list of {', '.join(SQL_ENGINES)}"
        )
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"invalid engines {text!r}: name each engine once")
    return names


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to ``commands`` (what ``add_subparsers`` returned)."""
    parser = add_command(
        commands,
        "demo",
        run_demo,
        source=False,
        help="query a synthetic stream with DuckDB, Polars and DataFusion over one cache, "
        "and show that the stream was read exactly once",
        description="""\
Ingest a deterministic synthetic event stream into one cache, then ask DuckDB,
Polars and DataFusion the same questions over it, several rounds; print
timings, answers and the cache's stats. Needs no network and no files. With
--disk, --disk-capacity defaults to 4GiB and --memory-capacity to 32MiB, so
most batches are read back from the file.""",
    )
    for option, kind, default, help in (
        ("--rows", count(1), DEMO_ROWS, "synthetic rows"),
        ("--batch-rows", count(1), BATCH_ROWS, "rows per batch"),
        ("--rounds", count(1), DEMO_ROUNDS, "times each engine asks each question"),
        ("--seed", int, DEMO_SEED, "seed of the synthetic data"),
    ):
        parser.add_argument(option, type=kind, default=default, help=f"{help} (default {default})")
    parser.add_argument(
        "--engines",
        type=_engine_list,
        default=list(SQL_ENGINES),
        metavar="LIST",
        help="comma-separated engines (default duckdb,polars,datafusion)",
    )
    return parser


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo and print its report to standard output; return 0.

    Engines that are not installed are skipped with a note; :class:`CLIError`
    if none is.
    """
    from batchcorder._cli.caching import cache_session, check_cache_options, format_stats, ingest
    from batchcorder._cli.sources import Source
    from batchcorder._cli.synthetic import EventStream

    out, stderr = standard_streams(args.stdout, args.stderr)
    if args.disk is not None:
        args.disk_capacity = args.disk_capacity or DEMO_DISK_CAPACITY
        args.memory_capacity = args.memory_capacity or DEMO_MEMORY_CAPACITY
    check_cache_options(args, stderr)
    disk, disk_capacity, memory_capacity = args.disk, args.disk_capacity, args.memory_capacity

    def write(text: str) -> None:
        out.write(text.encode())
        out.flush()

    stream = EventStream(args.rows, batch_rows=args.batch_rows, seed=args.seed)
    upstream = stream.reader()
    with cache_session(upstream, disk, disk_capacity, memory_capacity) as cache:
        mode = "memory mode"
        if disk is not None:
            mode = (
                f"disk mode in {disk} (file budget {format_size(disk_capacity)}, "
                f"{format_size(memory_capacity)} kept in RAM)"
            )
        write(
            f"batchcorder demo: {args.rows:,} synthetic events, seed {args.seed}, "
            f"in batches of {args.batch_rows:,} rows\ncache: {mode}\n"
            f"upstream batches produced before the first read: {stream.batches_produced}\n"
        )
        source = Source(upstream, "the synthetic stream", total_rows=args.rows)
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
            answers = _ask(sessions, args.rounds)
        finally:
            for session in sessions:
                session.close()
        _report(answers, write)
        stats = cache.stats
        write("\ncache stats:\n" + format_stats(stats) + "\n")
        once = "each exactly once"
        if stream.batches_produced != stats.ingested_batches:
            once = f"but the cache ingested {stats.ingested_batches}"
        write(
            f"upstream batches produced: {stream.batches_produced}, {once}; "
            f"the cache served {stats.readers_created} readers to "
            f"{len(sessions) * args.rounds * len(QUESTIONS)} queries\n"
        )
    return 0


def _open_engines(names: list[str], cache: Any, write: Callable[[str], None]) -> list[Any]:
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


#: Per engine, per question, per round: the answer (a ``pa.Table``) and its milliseconds.
Answers = dict[str, list[list[tuple[Any, float]]]]


def _ask(sessions: list[Any], rounds: int) -> Answers:
    """Every round, every engine, every question: time it and keep the answer."""
    from batchcorder._cli.engines import run_statement

    answers: Answers = {session.name: [[] for _ in QUESTIONS] for session in sessions}
    for _ in range(rounds):
        for session in sessions:

            def run_round(session: Any = session) -> None:
                for number, sql in enumerate(QUESTIONS.values(), start=1):
                    begun = time.perf_counter()
                    table = run_statement(session, number, sql, lambda reader: reader.read_all())
                    took = (time.perf_counter() - begun) * 1000
                    answers[session.name][number - 1].append((table, took))

            session.run(run_round)
    return answers


def _report(answers: Answers, write: Callable[[str], None]) -> None:
    import pyarrow as pa

    from batchcorder._cli.output import format_table

    for number, (label, sql) in enumerate(QUESTIONS.items(), start=1):
        write(f"Q{number}  {label:<15}{sql}\n")
    rows = [
        {"engine": name, "query": f"Q{number}", "rows": rounds[0][0].num_rows}
        # a decimal with one digit prints as 12.0, where a float prints 12
        | {f"round {i} ms": decimal.Decimal(f"{ms:.1f}") for i, (_, ms) in enumerate(rounds, 1)}
        for name, asked in answers.items()
        for number, rounds in enumerate(asked, start=1)
    ]
    write("\n" + format_table(pa.Table.from_pylist(rows), footer=False))
    reference, *others = answers
    agree = all(
        _same(mine[0], theirs[0])
        for other in others
        for question, theirs_asked in zip(answers[reference], answers[other], strict=True)
        for mine, theirs in zip(question, theirs_asked, strict=True)
    )
    verdict = "every engine gave the same answers" if agree else "ENGINES DISAGREE"
    write(f"\nanswers ({reference}, round 1; {verdict}):\n")
    for number, (label, rounds) in enumerate(zip(QUESTIONS, answers[reference], strict=True), 1):
        write(f"\nQ{number} {label}\n" + format_table(rounds[0][0], footer=False))


def _same(left: Any, right: Any) -> bool:
    """Whether two answers hold the same rows, by value, floats within 1e-9."""
    return left.shape == right.shape and all(
        math.isclose(a, b, rel_tol=1e-9)
        if isinstance(a, float) and isinstance(b, float)
        else a == b
        for row_left, row_right in zip(left.to_pylist(), right.to_pylist(), strict=True)
        for a, b in zip(row_left.values(), row_right.values(), strict=True)
    )
