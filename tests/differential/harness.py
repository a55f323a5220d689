"""Running queries on every engine path over caches of a table, against the same path over the table.

:func:`first_mismatch` is the whole differential check for one table and a few
queries: it builds one cache per storage mode (memory, disk, disk with a
1-byte hot layer), opens it on every path in the given order, runs each query
twice (the second run replays the cache), and compares each answer with the
same path's answer over the plain ``pa.Table`` (:mod:`tests.differential.compare`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from hypothesis import event
from hypothesis.control import currently_in_test_context

from batchcorder import StreamCache
from tests.conftest import MODES, mode_kwargs
from tests.differential.compare import (
    Outcome,
    difference,
    strict_zero_sign,
    subset_difference,
    tolerances,
)
from tests.differential.engines import EnginePath, Runner
from tests.differential.queries import GroupBy, Head, Query


def outcome(run: Runner, query: Query) -> Outcome:
    """``run(query)``, or the exception it raised (an engine's panic included)."""
    try:
        return Outcome(run(query))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # pyo3's PanicException is a BaseException
        return Outcome(None, error)


class Reference:
    """A path's answers over the plain table, computed once per query."""

    def __init__(self, path: EnginePath, table: pa.Table) -> None:
        self.name = path.name
        self.table = table
        self.run = path.over_table(table)
        self.answers: dict[Query, Outcome] = {}

    def answer(self, query: Query) -> Outcome:
        if query not in self.answers:
            answer = self.answers[query] = outcome(self.run, query)
            if currently_in_test_context():
                # Shown by --hypothesis-show-statistics: how often answers are errors or empty.
                if answer.error is not None:
                    event(f"{self.name}: the table raises {answer.error_type}")
                else:
                    assert answer.table is not None
                    event(f"{self.name}: rows {min(answer.table.num_rows, 2)}")
        return self.answers[query]


def _error_difference(expected: Outcome, got: Outcome) -> str | None:
    """What is wrong with ``got`` where the path raised over the table, or None."""
    if got.error is None:
        if "has no kernel" in str(expected.error):
            # A kernel pyarrow lacks (filtering string_view) for the table's
            # batches, which a cache dataset may skip by their statistics.
            return None
        return f"the table raised {expected.error_type}: {expected.error}; the cache did not"
    if type(got.error) is not type(expected.error):
        return (
            f"raised {got.error_type}: {got.error}; over the table "
            f"{expected.error_type}: {expected.error}"
        )
    return None


def check(path: EnginePath, query: Query, reference: Reference, got: Outcome) -> str | None:
    """What is wrong with ``got``, the path's outcome of ``query`` over a cache, or None."""
    table = reference.table
    expected = reference.answer(query)
    if expected.error_type == "PanicException" or "panicked" in str(expected.error):
        # The engine crashed over the plain table (an engine bug; DataFusion
        # reports a panic in one of its tasks as an ordinary error naming it):
        # there is no answer to compare with.
        return None
    if expected.error is not None:
        return _error_difference(expected, got)
    if got.error is not None:
        return f"raised {got.error_type}: {got.error}"
    assert expected.table is not None and got.table is not None
    bounds = tolerances(query, table)
    output = query.output
    if query.is_deterministic(path.keeps_order):
        return difference(
            expected.table,
            got.table,
            order_columns=[key.index for key in output.order_by],
            positional=query.keeps_row_order(path.keeps_order)
            or (isinstance(output, GroupBy) and not output.keys),
            strict_zero=strict_zero_sign(query),
            tolerances=bounds,
        )
    # A LIMIT over rows in no fixed order: any rows of the unlimited result.
    if isinstance(output, GroupBy) and isinstance(query.relation, Head):
        # Aggregates of whichever rows the engine took first: only the schema is fixed.
        return subset_difference(
            expected.table.slice(0, 0),
            got.table.slice(0, 0),
            exact_rows=None,
            max_rows=None,
            tolerances={},
        )
    unlimited = reference.answer(query.without_limits())
    if unlimited.error is not None or unlimited.table is None:
        return None
    if isinstance(query.relation, Head):
        cap = (
            query.relation.rows if output.limit is None else min(output.limit, query.relation.rows)
        )
        return subset_difference(
            unlimited.table, got.table, exact_rows=None, max_rows=cap, tolerances=bounds
        )
    assert output.limit is not None
    return subset_difference(
        unlimited.table,
        got.table,
        exact_rows=min(output.limit, unlimited.table.num_rows),
        max_rows=None,
        tolerances=bounds,
    )


@dataclass(frozen=True)
class Mismatch:
    """The first wrong answer of one run over one cache."""

    path: EnginePath
    query: Query | None  # None: the registration itself failed
    replay: int
    problem: str


def _run_paths(
    cache: StreamCache,
    paths: list[EnginePath],
    queries: list[Query],
    references: dict[str, Reference],
) -> Mismatch | None:
    """Every query on every path over ``cache``, twice; the first mismatch, or None.

    The first mismatch ends the run, which keeps shrinking a failing example fast.
    """
    for path in paths:
        try:
            run = path.over_cache(cache)
        except Exception as error:
            return Mismatch(path, None, 1, f"registration raised {error!r}")
        for query in queries:
            for replay in (1, 2):
                problem = check(path, query, references[path.name], outcome(run, query))
                if problem is not None:
                    return Mismatch(path, query, replay, problem)
    return None


def first_mismatch(
    schema: pa.Schema,
    batches: list[pa.RecordBatch],
    queries: list[Query],
    paths: list[EnginePath],
) -> str | None:
    """Run ``queries`` on ``paths`` over a cache of ``batches`` in every mode; describe the
    first answer that differs from the same path's answer over the table, or return None.

    The paths open one cache per mode in the order given, so the first of them
    reads the cache while the upstream is still unread.
    """
    table = pa.Table.from_batches(batches, schema=schema)
    references = {path.name: Reference(path, table) for path in paths}

    with tempfile.TemporaryDirectory() as directory:

        def run(mode: str, paths: list[EnginePath], queries: list[Query]) -> Mismatch | None:
            upstream = pa.RecordBatchReader.from_batches(schema, iter(batches))
            cache = StreamCache(upstream, **mode_kwargs(mode, Path(directory) / mode))
            try:
                return _run_paths(cache, paths, queries, references)
            finally:
                cache.close()

        for mode in MODES:
            mismatch = run(mode, paths, queries)
            if mismatch is None:
                continue
            alone = [
                other
                for other in MODES
                if run(other, [mismatch.path], [mismatch.query] if mismatch.query else [])
            ]
            before = [path.name for path in paths[: paths.index(mismatch.path)]]
            what = mismatch.query.describe() if mismatch.query is not None else "registration"
            return (
                f"{mismatch.path.name}, {mode} mode, run {mismatch.replay} "
                f"(paths that read this cache before: {before}):\n  {what}\n  "
                f"{mismatch.problem}\nThe same path and query alone, on a fresh cache, "
                f"fail in: {alone or 'no mode'}"
            )
    return None
