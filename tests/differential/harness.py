"""Running queries on every engine path over caches of a table, against the same path over the table.

:func:`first_mismatch` is the whole differential check for one example (the
table ``t``, the second table ``u``, a few queries): for each storage mode
(memory, disk, disk with a 1-byte hot layer) it opens caches of both tables
on every path, runs each query twice (the second run replays the cache), and
compares each answer, or the kind of error raised, with the same path's
answer over the plain ``pa.Table`` objects (:mod:`tests.differential.compare`).

Each path reads, in each mode, caches in one of three states: fresh (nothing
pulled from the upstream yet), partly ingested (some batches pulled by an
earlier reader), or fully ingested (``ingest_all``). The state of a path
rotates with the mode, so across the three modes every path reads every
state. Fresh and partly ingested caches are the path's own, so its first
query meets them as they are; the fully ingested ones are shared by all the
paths in that state, in the drawn path order.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from hypothesis import event
from hypothesis.control import currently_in_test_context

from batchcorder import StreamCache
from tests.conftest import MODES, mode_kwargs
from tests.differential.compare import (
    Mismatch,
    Outcome,
    RegistrationFailed,
    classify,
    difference,
    strict_zero_sign,
    subset_difference,
    tolerances,
)
from tests.differential.engines import EnginePath, Runner
from tests.differential.queries import GroupBy, Query, Select

#: States a cache is read in.
STATES = ("fresh", "partial", "full")


@dataclass(frozen=True)
class Source:
    """One table of an example: its schema and batches."""

    schema: pa.Schema
    batches: list[pa.RecordBatch]

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.batches, schema=self.schema)


def outcome(run: Runner, query: Query) -> Outcome:
    """``run(query)``, or the exception it raised (an engine's panic included)."""
    try:
        return Outcome(run(query))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # pyo3's PanicException is a BaseException
        return Outcome(None, error)


class Reference:
    """A path's answers over the plain tables, computed once per query."""

    def __init__(self, path: EnginePath, tables: dict[str, pa.Table], limits: bool = False) -> None:
        self.name = path.name + (" (limits)" if limits else "")
        self.tables = tables
        self.run: Runner | None = None
        self.opening: BaseException | None = None
        #: The path's engine over plain datasets, where the path has such limits.
        self.limits = (
            Reference(path, tables, limits=True) if path.limits is not None and not limits else None
        )
        opener = path.limits if limits and path.limits is not None else path.over_table
        try:
            self.run = opener(tables)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self.opening = error
        self.answers: dict[Query, Outcome] = {}

    def answer(self, query: Query) -> Outcome:
        if query not in self.answers:
            answer = Outcome(None, self.opening) if self.run is None else outcome(self.run, query)
            self.answers[query] = answer
            if currently_in_test_context():
                # Shown by --hypothesis-show-statistics: how often answers are errors or empty.
                if answer.error is not None:
                    event(f"{self.name}: the table raises ({answer.error_kind})")
                else:
                    assert answer.table is not None
                    event(f"{self.name}: rows {min(answer.table.num_rows, 2)}")
        return self.answers[query]


def _error_difference(expected: Outcome, got: Outcome) -> str | None:
    """What is wrong with ``got`` where the path raised over the table, or None."""
    if got.error is None:
        assert got.table is not None
        return (
            f"the table raised {expected.error_type} ({expected.error_kind}): "
            f"{str(expected.error)[:300]}; the cache answered {got.table.num_rows} rows"
        )
    if got.error_kind != expected.error_kind:
        return (
            f"raised {got.error_type} ({got.error_kind}): {str(got.error)[:300]}; over the "
            f"table {expected.error_type} ({expected.error_kind}): {str(expected.error)[:300]}"
        )
    return None


def _unordered_difference(
    query: Query, reference: Reference, got: pa.Table, bounds: dict[int, float]
) -> str | None:
    """What is wrong with ``got`` as an answer of a ``LIMIT`` over rows in no fixed order."""
    expected = reference.answer(query)
    assert expected.table is not None
    output = query.output
    if query.relation.cuts and (isinstance(output, GroupBy) or output.windowed):
        # Aggregates or windows of whichever rows the engine took first: only the schema
        # is fixed.
        return subset_difference(
            expected.table.slice(0, 0),
            got.slice(0, 0),
            exact_rows=None,
            max_rows=None,
            tolerances={},
        )
    unlimited = reference.answer(query.without_limits())
    if unlimited.error is not None or unlimited.table is None:
        return None
    if query.relation.cuts:
        # Which rows the cut keeps depends on scan order: at most that many.
        cap = query.relation.rows  # type: ignore[attr-defined]
        if output.limit is not None:
            cap = min(cap, output.limit)
        return subset_difference(
            unlimited.table, got, exact_rows=None, max_rows=cap, tolerances=bounds
        )
    return subset_difference(
        unlimited.table,
        got,
        exact_rows=expected.table.num_rows,
        max_rows=None,
        tolerances=bounds,
    )


def may_stop_early(query: Query) -> bool:
    """Whether an engine may stop reading the query's input once it has enough rows.

    A ``LIMIT`` without ``ORDER BY`` (or a cut of the table) ends the scan when
    enough rows arrived; an engine reading partitions in parallel (DataFusion)
    may by then have met an error in another partition, or not: whether such a
    query raises is a race, over the plain table as over a cache.
    """
    output = query.output
    limited = isinstance(output, Select) and output.limit is not None and not output.order_by
    return query.relation.cuts or limited


def _raced_difference(
    query: Query,
    expected: Outcome,
    got: Outcome,
    rerun: Callable[[Query], Outcome],
) -> str | None:
    """What is wrong where one of ``expected`` and ``got`` raised and the other answered a
    query that may stop early (:func:`may_stop_early`): None where the race explains it.

    It does where the query without its limits raises that kind of error over the
    tables; then an answer over the cache must be one the limit allows, and the cache
    must raise the same kind without the limits (where nothing stops the scan early,
    nothing may hide the error).
    """
    assert got.table is not None
    output = query.output
    cap = output.limit if isinstance(output, Select) and output.limit is not None else None
    if cap is not None and got.table.num_rows > cap:
        return f"answered {got.table.num_rows} rows under LIMIT {cap}"
    over_cache = rerun(query.without_limits())
    if over_cache.error is None or over_cache.error_kind != expected.error_kind:
        what = (
            f"answered {over_cache.table.num_rows} rows"
            if over_cache.table is not None
            else f"raised {over_cache.error_type} ({over_cache.error_kind})"
        )
        return (
            f"{_error_difference(expected, got)}; without its limits the query raises "
            f"{expected.error_kind} over the table, and over the cache {what}"
        )
    return None


def _race_explains(query: Query, raised: Outcome, references: list[Reference]) -> bool:
    """Whether ``query``, which may stop early, raises ``raised``'s kind of error without
    its limits over the tables (on the path, or on its engine's plain datasets)."""
    whole = query.without_limits()
    raced = any(
        reference.answer(whole).error is not None
        and reference.answer(whole).error_kind == raised.error_kind
        for reference in references
    )
    if raced and currently_in_test_context():
        event(f"{references[0].name}: a LIMIT raced an error")
    return raced


def _raised(got: Outcome) -> str:
    return f"raised {got.error_type} ({got.error_kind}): {str(got.error)[:600]}"


def _engine_explains(
    path: EnginePath, query: Query, expected: Outcome, got: Outcome, limits: Reference | None
) -> bool:
    """Whether the error the cache raised is the engine's own answer, not the cache's."""
    if got.error is None:
        return False
    if limits is not None:
        # The engine's own scan of a plain dataset raises this kind too: a limit of
        # the engine's dataset scan, not of the cache.
        limit = limits.answer(query)
        if limit.error is not None and limit.error_kind == got.error_kind:
            return True
    # Polars refuses the comparison of a list with a literal when it evaluates it;
    # over a frame its optimizer may fold the whole predicate to false first (see
    # polars_unoptimized_frames). Evaluating it is Polars' own answer.
    return (
        expected.error is None
        and path.name.startswith("polars")
        and got.error_kind == "type"
        and "cannot perform" in str(got.error)
    )


def check(
    path: EnginePath,
    query: Query,
    reference: Reference,
    got: Outcome,
    rerun: Callable[[Query], Outcome],
) -> str | None:
    """What is wrong with ``got``, the path's outcome of ``query`` over a cache, or None.

    ``rerun`` runs another query on the same path over the same caches.
    """
    expected = reference.answer(query)
    if expected.error_kind == "panic":
        # The engine crashed over the plain table (an engine bug; DataFusion
        # reports a panic in one of its tasks as an ordinary error naming it):
        # there is no answer to compare with.
        return None
    limits = reference.limits if reference.limits and reference.limits.run else None
    if (expected.error is None) != (got.error is None) and may_stop_early(query):
        raised = got if got.error is not None else expected
        if _race_explains(query, raised, [reference] + ([limits] if limits else [])):
            return None if got.error is not None else _raced_difference(query, expected, got, rerun)
    if _engine_explains(path, query, expected, got, limits):
        return None
    if expected.error is not None and got.error is None and limits is not None:
        # The engine filters rows in a plain dataset's scan before it evaluates the
        # rest of its predicate (DataFusion pushes `id < 0` and then casts only the
        # rows left): where its scan of a plain dataset answers too, the answer is
        # the engine's over any dataset, not an error the cache hid.
        limit = limits.answer(query)
        if limit.error is None and limit.table is not None:
            expected = limit
    if expected.error is not None:
        return _error_difference(expected, got)
    if got.error is not None:
        return _raised(got)
    assert expected.table is not None and got.table is not None
    bounds = tolerances(query, reference.tables)
    output = query.output
    if not query.is_deterministic(path.keeps_order_of(query)):
        return _unordered_difference(query, reference, got.table, bounds)
    return difference(
        expected.table,
        got.table,
        order_columns=[key.index for key in output.order_by],
        positional=query.keeps_row_order(path.keeps_order_of(query))
        or (isinstance(output, GroupBy) and not output.keys),
        strict_zero=strict_zero_sign(query),
        tolerances=bounds,
    )


@dataclass(frozen=True)
class Found:
    """The first wrong answer of one run."""

    path: EnginePath
    query: Query | None  # None: the registration itself failed
    state: str
    replay: int
    problem: str
    kind: type[Mismatch]


class Caches:
    """Opens caches of an example's tables in one storage mode and a given state, and closes
    them all at the end."""

    def __init__(self, sources: dict[str, Source], mode: str, directory: Path, partial: int):
        self.sources = sources
        self.mode = mode
        self.directory = directory
        self.partial = partial
        self.opened = 0
        self.shared: dict[str, StreamCache] | None = None
        self.stack = ExitStack()

    def _cache(self, source: Source, state: str) -> StreamCache:
        self.opened += 1
        upstream = pa.RecordBatchReader.from_batches(source.schema, iter(source.batches))
        kwargs = mode_kwargs(self.mode, self.directory / f"{self.mode}-{self.opened}")
        cache = StreamCache(upstream, **kwargs)
        self.stack.callback(cache.close)
        if state == "full":
            cache.ingest_all()
        elif state == "partial":
            reader = cache.reader()
            for _ in range(min(self.partial, max(len(source.batches) - 1, 0))):
                next(reader)
            reader.close()
        return cache

    def open(self, state: str) -> dict[str, StreamCache]:
        """Caches of every table in ``state``: fully ingested ones are shared."""
        if state != "full":
            return {name: self._cache(source, state) for name, source in self.sources.items()}
        if self.shared is None:
            self.shared = {
                name: self._cache(source, state) for name, source in self.sources.items()
            }
        return self.shared

    def close(self) -> None:
        self.stack.close()


def _run_path(
    path: EnginePath, caches: dict[str, StreamCache], queries: list[Query], reference: Reference
) -> Iterator[tuple[Query | None, int, str, type[Mismatch]]]:
    """Every query on ``path`` over ``caches``, twice: (query, run, problem, kind) for each
    mismatch."""
    try:
        run = path.over_cache(caches)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # a panic at registration too
        yield None, 1, f"registration raised {error!r}", RegistrationFailed
        return
    for query in queries:
        for replay in (1, 2):
            got = outcome(run, query)
            problem = check(path, query, reference, got, lambda q: outcome(run, q))
            if problem is not None:
                yield query, replay, problem, classify(reference.answer(query), got)


def _run_mode(
    caches: Caches,
    paths: list[EnginePath],
    states: list[str],
    queries: list[Query],
    references: dict[str, Reference],
) -> Found | None:
    """Every query on every path, path ``n`` over caches in ``states[n]``; the first mismatch.

    The first mismatch ends the run, which keeps shrinking a failing example fast.
    """
    try:
        for path, state in zip(paths, states, strict=True):
            for query, replay, problem, kind in _run_path(
                path, caches.open(state), queries, references[path.name]
            ):
                return Found(path, query, state, replay, problem, kind)
    finally:
        caches.close()
    return None


def first_mismatch(
    sources: dict[str, Source],
    queries: list[Query],
    paths: list[EnginePath],
    rotation: int = 0,
    partial: int = 1,
) -> Mismatch | None:
    """Run ``queries`` on ``paths`` over caches of ``sources`` in every mode and state;
    return the first answer that differs from the same path's answer over the tables, as a
    :class:`~tests.differential.compare.Mismatch` of its kind to raise, or None.

    In mode ``m``, path ``n`` reads caches in state ``STATES[(n + m + rotation) % 3]``; a
    partly ingested cache has ``partial`` batches pulled (at least one batch is left).
    """
    tables = {name: source.table() for name, source in sources.items()}
    references = {path.name: Reference(path, tables) for path in paths}

    with tempfile.TemporaryDirectory() as directory:

        def run(mode: str, paths: list[EnginePath], states: list[str], queries: list[Query]):
            caches = Caches(sources, mode, Path(directory), partial)
            return _run_mode(caches, paths, states, queries, references)

        for index, mode in enumerate(MODES):
            states = [STATES[(n + index + rotation) % 3] for n in range(len(paths))]
            mismatch = run(mode, paths, states, queries)
            if mismatch is None:
                continue
            alone = [
                f"{other} {state}"
                for other in MODES
                for state in STATES
                if run(other, [mismatch.path], [state], [mismatch.query] if mismatch.query else [])
            ]
            before = [path.name for path in paths[: paths.index(mismatch.path)]]
            what = mismatch.query.describe() if mismatch.query is not None else "registration"
            return mismatch.kind(
                f"{mismatch.path.name}, {mode} mode, {mismatch.state} cache, run "
                f"{mismatch.replay} (paths that ran before in this mode: {before}):\n  {what}\n"
                f"  {mismatch.problem}\nThe same path and query alone, on new caches, "
                f"fail in: {alone or 'no mode or state'}"
            )
    return None
