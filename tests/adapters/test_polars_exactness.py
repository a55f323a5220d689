"""Polars over a cache answers every query as over ``pl.from_arrow(table).lazy()``, errors included.

Each query runs over the plain frame and over ``batchcorder.scan`` of a cache
in memory and disk mode (a one-byte hot layer, so batches are read from the
file), fresh, partly and fully ingested: the rows must be equal, and where the
plain frame raises, the cache raises the same kind of error, whatever the
cache has ingested. Queries use tables with columns they do not read (Polars
pushes a narrowed projection into the scan).

Two causes of difference are covered:

- Polars 2.1's streaming engine panics on a window function (or
  ``with_row_index``) over a ``LazyFrameResolver`` given a narrowed
  projection, so the scan is never a resolver;
- batches skipped by statistics, or passed whole, are not evaluated by the
  predicate: a predicate with a part that may raise (a list comparison, a
  strict cast) must not skip, or an ingested cache answers where the table
  raises.

For a longer run of the property:
``BATCHCORDER_EXACTNESS_EXAMPLES=1000 .venv/bin/python -m pytest tests/adapters/test_polars_exactness.py``

Internal parts under test: ``batchcorder._panics``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import batchcorder
from batchcorder import StreamCache
from batchcorder._panics import is_engine_panic
from batchcorder.errors import EnginePanicError

MODES = ("memory", "disk")
STATES = ("fresh", "partly", "ingested")
EXAMPLES = int(os.environ.get("BATCHCORDER_EXACTNESS_EXAMPLES", "60"))

Query = Callable[[pl.LazyFrame], pl.LazyFrame]


def _cache(table: pa.Table, mode: str, state: str, directory: Path, batch_rows: int) -> StreamCache:
    """A cache of ``table`` in ``mode``, with as much ingested as ``state`` says."""
    options: dict[str, Any] = {}
    if mode == "disk":
        options = {"disk_path": directory, "disk_capacity": 1 << 30, "memory_capacity": 1}
    cache = StreamCache(table.to_reader(max_chunksize=batch_rows), **options)
    if state == "partly":
        with cache.reader() as reader:
            next(iter(reader), None)  # one batch ingested, the rest not yet
    elif state == "ingested":
        cache.ingest_all()
    return cache


def _outcome(query: Callable[[], pl.DataFrame]) -> tuple[str, Any]:
    """("rows", the frame) or ("error", what kind of error) of running ``query``."""
    try:
        return "rows", query()
    except BaseException as error:
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(error, EnginePanicError) or is_engine_panic(error):
            return "error", "panic"
        return "error", type(error).__name__


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True) if frame.columns else frame


def _assert_same(
    got: tuple[str, Any], expected: tuple[str, Any], ordered: bool, where: str, same_kind: bool
) -> None:
    assert got[0] == expected[0], (where, got, expected)
    if got[0] == "error":
        if same_kind:
            assert got[1] == expected[1], (where, got, expected)
        return
    left, right = (got[1], expected[1]) if ordered else (_sorted(got[1]), _sorted(expected[1]))
    # Sums over a different chunking may differ in their last bits.
    assert_frame_equal(left, right, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def _each_cache(
    table: pa.Table, directory: Path, batch_rows: int
) -> Iterator[tuple[str, str, Callable[[], StreamCache]]]:
    for mode in MODES:
        for state in STATES:
            folder = directory / f"{mode}-{state}"
            yield mode, state, lambda m=mode, s=state, f=folder: _cache(table, m, s, f, batch_rows)


def assert_answers_as_the_table(
    table: pa.Table,
    query: Query,
    directory: Path,
    *,
    batch_rows: int = 4,
    ordered: bool = False,
    same_kind: bool = True,
    predicate: pl.Expr | None = None,
) -> tuple[str, Any]:
    """Run ``query`` over the plain frame and over every cache; the outcomes must be equal.

    Errors must be of the same class unless ``same_kind`` is false: where two
    parts of a predicate raise different errors, which one Polars raises
    depends on the order its plan evaluates them in.

    One difference is allowed, in one direction: where evaluating the
    query's ``predicate`` over the table raises, Polars may still answer over
    a ``DataFrame`` (its optimiser folds a predicate that holds for no row,
    depending on the rest of the query); every cache must then raise, in
    every state. A cache never answers where the table raises.
    """
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    expected = _outcome(lambda: query(frame.lazy()).collect())
    if expected == ("error", "panic"):
        pytest.skip("Polars panics over the plain frame")
    outcomes = []
    for mode, state, make in _each_cache(table, directory, batch_rows):
        cache = make()
        try:
            for _ in range(2):
                # Collected twice: the first collect may ingest more.
                got = _outcome(lambda c=cache: query(batchcorder.scan(c)).collect())
                outcomes.append((f"{mode} mode, {state} cache", got))
        finally:
            cache.close()
    if expected[0] == "rows" and _folded(frame, predicate, outcomes):
        return ("error", "folded by the table")
    for where, got in outcomes:
        _assert_same(got, expected, ordered, where, same_kind)
    return expected


def _folded(
    frame: pl.DataFrame, predicate: pl.Expr | None, outcomes: list[tuple[str, tuple[str, Any]]]
) -> bool:
    """Whether the caches raise where the table answered, for a predicate that raises when evaluated."""
    if predicate is None or not any(got[0] == "error" for _, got in outcomes):
        return False
    if _outcome(lambda: frame.select(predicate.alias("mask")))[0] != "error":
        return False
    assert all(got[0] == "error" for _, got in outcomes), outcomes  # in every state
    return True


# -- the examples of the report ------------------------------------------------------


def windows_table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(12), pa.int64()),
            "g": pa.array([n % 3 for n in range(12)], pa.int64()),
            "x": pa.array([float(n) for n in range(12)], pa.float64()),
            "unused": pa.array([f"u{n}" for n in range(12)]),
            "also_unused": pa.array(range(12), pa.int32()),
        }
    )


WINDOW_QUERIES: dict[str, Query] = {
    "sum_over": lambda lf: lf.select("id", "g", pl.col("x").sum().over("g")),
    "only_the_window": lambda lf: lf.select(pl.col("x").sum().over("g")),
    "rank_over": lambda lf: lf.select("id", pl.col("x").rank().over("g")),
    "ordered_over": lambda lf: lf.select("id", pl.col("x").cum_sum().over("g", order_by="id")),
    "over_in_with_columns": lambda lf: lf.with_columns(w=pl.col("x").max().over("g")).select(
        "id", "w"
    ),
    "filter_on_a_window": lambda lf: lf.filter(pl.col("x") == pl.col("x").max().over("g")).select(
        "id"
    ),
    "filtered_then_over": lambda lf: lf.filter(pl.col("id") > 3).select(
        "id", pl.col("x").mean().over("g")
    ),
    "with_row_index": lambda lf: lf.with_row_index().select("index", "x"),
}


@pytest.mark.parametrize("name", WINDOW_QUERIES)
def test_window_functions_answer_as_over_the_table(name: str, tmp_path: Path) -> None:
    assert_answers_as_the_table(windows_table(), WINDOW_QUERIES[name], tmp_path, ordered=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("state", STATES)
def test_sql_windows_answer_as_over_the_table(mode: str, state: str, tmp_path: Path) -> None:
    table = windows_table()
    sql = "SELECT id, sum(x) OVER (PARTITION BY g) AS s FROM src ORDER BY id"
    expected = pl.SQLContext(src=pl.from_arrow(table).lazy()).execute(sql, eager=True)
    cache = _cache(table, mode, state, tmp_path, batch_rows=4)
    ctx = pl.SQLContext()
    batchcorder.register(ctx, "src", cache)
    assert_frame_equal(ctx.execute(sql, eager=True), expected)
    cache.close()


def raising_table(rows: int = 40) -> pa.Table:
    """Ordered ids (batches have narrow bounds), a list column and strings not all numbers."""
    return pa.table(
        {
            "x": pa.array(range(rows), pa.int64()),
            "l": pa.array([[n] for n in range(rows)], pa.list_(pa.int64())),
            "s": pa.array([str(n) if n != 7 else "seven" for n in range(rows)]),
            "f": pa.array([math.nan if n % 9 == 4 else n / 2 for n in range(rows)]),
            "unused": pa.array(range(rows), pa.int16()),
        }
    )


RAISING_PREDICATES: dict[str, pl.Expr] = {
    # The list comparison raises for its types; x > 50 excludes every batch.
    "list_and_a_skipping_bound": (pl.col("x") > 50) & (pl.col("l") > pl.lit([0])),
    "list_and_a_bound": (pl.col("x") > 5) & (pl.col("l") > pl.lit([0])),
    "list_or_a_whole_bound": (pl.col("x") >= 0) | (pl.col("l") > pl.lit([0])),
    # Raises on row 7 only ("seven"), for every row: Polars pushes the whole
    # conjunction into the scan and evaluates it on every row.
    "to_integer_and_a_skipping_bound": (pl.col("x") > 50)
    & (pl.col("s").str.to_integer(strict=True) >= 0),
    "to_integer_or_a_whole_bound": (pl.col("x") >= 0)
    | (pl.col("s").str.to_integer(strict=True) >= 0),
    "json_and_a_skipping_bound": (pl.col("x") < -1) & (pl.col("s").str.json_decode(pl.Int64) > 0),
    # The strict cast raises on row 7 only, which x > 20 excludes: Polars keeps
    # the cast in a filter of its own, above the scan.
    "strict_cast_on_skipped_rows": (pl.col("x") > 20) & (pl.col("s").cast(pl.Int64) > 0),
    "strict_cast_on_kept_rows": (pl.col("x") < 20) & (pl.col("s").cast(pl.Int64) > 0),
    "string_with_a_number": (pl.col("x") > 50) & (pl.col("s") > 3),
    "number_with_a_string": (pl.col("x") > 50) | (pl.col("x") > pl.lit("a")),
    # Refused when the plan is made, over a table of any length.
    "string_function_of_an_integer": (pl.col("x") > 50) & pl.col("x").str.contains("1"),
    "missing_column": (pl.col("x") > 50) & (pl.col("nope") > 1),
    "date_part_of_a_float": (pl.col("x") > 50) & (pl.col("f").dt.year() > 1),
    "bitwise_not_of_an_integer": (pl.col("x") > 50) & ~pl.col("unused"),
    "an_integer_column": (pl.col("x") > 50) | pl.col("unused"),
}


@pytest.mark.parametrize("name", RAISING_PREDICATES)
@pytest.mark.parametrize("rows", [40, 0])
def test_a_predicate_raises_as_over_the_table_in_every_state(
    name: str, rows: int, tmp_path: Path
) -> None:
    predicate = RAISING_PREDICATES[name]
    for query in (
        lambda lf: lf.filter(predicate).select("x"),
        lambda lf: lf.filter(predicate).select(pl.len()),
        lambda lf: lf.head(12).filter(predicate).select("x"),
    ):
        assert_answers_as_the_table(raising_table(rows), query, tmp_path, ordered=True)


def test_a_predicate_that_raises_when_evaluated_raises_in_every_state(tmp_path: Path) -> None:
    # x.is_null() & (x >= 0) holds for no row. Over a DataFrame, Polars'
    # optimiser folds filter(predicate) into no row without evaluating
    # i > "a", which raises, but raises for filter(predicate).select(pl.len()):
    # the scan, which sees the predicate alone, raises for both, in every state.
    table = pa.table(
        {
            "x": pa.array([None, 1.0, None, -2.0] * 5, pa.float64()),
            "i": pa.array(range(20), pa.int32()),
            "unused": pa.array(range(20), pa.int64()),
        }
    )
    predicate = ~(pl.col("x").is_not_null() | (pl.col("x") < 0)) & ~(pl.col("i") > pl.lit("a"))
    frame = pl.from_arrow(table).lazy()
    assert frame.filter(predicate).collect().height == 0
    with pytest.raises(pl.exceptions.ComputeError):
        frame.filter(predicate).select(pl.len()).collect()
    for query in (
        lambda lf: lf.filter(predicate).select("i"),
        lambda lf: lf.filter(predicate).select(pl.len()),
        lambda lf: lf.filter(predicate).group_by("x").agg(pl.col("i").sum()),
    ):
        outcome = assert_answers_as_the_table(table, query, tmp_path, predicate=predicate)
        assert outcome[0] == "error"


def test_a_list_comparison_raises_over_an_ingested_cache(tmp_path: Path) -> None:
    # The example of the report: the answer must not depend on the cache's state.
    predicate = (pl.col("x") > 50) & (pl.col("l") > pl.lit([0]))
    for mode in MODES:
        cache = _cache(raising_table(), mode, "ingested", tmp_path / mode, batch_rows=4)
        with pytest.raises(pl.exceptions.InvalidOperationError):
            batchcorder.scan(cache).filter(predicate).collect()
        cache.close()


NAN_PREDICATES: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "above": lambda c: c > 10,  # NaN is above every number in Polars
    "below": lambda c: c < 10,
    "not_below": lambda c: ~(c < 10),
    "at_most": lambda c: c <= 19.5,
    "not_equal": lambda c: c != 2,
    "between": lambda c: c.is_between(3, 12),
    "nan_literal": lambda c: c.lt(math.nan),
    "infinity": lambda c: c < float("inf"),
    "null_or": lambda c: c.is_null() | (c > 18),
    "not_null_and_not_above": lambda c: c.is_not_null() & ~(c > 3),
}


@pytest.mark.parametrize("name", NAN_PREDICATES)
def test_nan_and_nulls_follow_polars_in_every_skip(name: str, tmp_path: Path) -> None:
    table = raising_table().append_column(
        "n", pa.array([None if n % 5 == 0 else math.nan if n > 30 else float(n) for n in range(40)])
    )
    for column in ("f", "n"):
        predicate = NAN_PREDICATES[name](pl.col(column))
        assert_answers_as_the_table(
            table, lambda lf, p=predicate: lf.filter(p).select("x"), tmp_path, ordered=True
        )


def test_a_panic_in_the_scans_own_work_raises_an_error_naming_polars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No known input makes Polars 2.1 panic in the scan's own conversions: the
    # panic is Polars' own exception class, raised where Polars converts a batch.
    import batchcorder.adapters.polars as adapter

    def panicking(batch: object) -> pl.DataFrame:
        raise pl.exceptions.PanicException("index out of bounds: the len is 4 but the index is 4")

    cache = _cache(windows_table(), "disk", "ingested", tmp_path, batch_rows=4)
    monkeypatch.setattr(adapter, "_to_polars", panicking)
    with pytest.raises(EnginePanicError, match=r"^Polars panicked: index out of bounds") as raised:
        batchcorder.scan(cache).select("id").collect()
    assert isinstance(raised.value, RuntimeError)
    assert is_engine_panic(raised.value.__cause__)
    cache.close()


@pytest.mark.parametrize(
    "predicate",
    [
        pl.col("f") < pl.lit(0.1, pl.Float32),  # 0.100000001490116... as Polars compares it
        pl.col("f") >= pl.lit(1 / 3, pl.Float32),
        pl.col("f") == pl.lit(0.1, pl.Float32),
        pl.col("g") > pl.lit(0.1, pl.Float32),
    ],
)
def test_a_float32_literal_compares_as_its_own_value(predicate: pl.Expr, tmp_path: Path) -> None:
    table = pa.table(
        {
            "f": pa.array([0.1, 1 / 3, 0.1, 0.5] * 4, pa.float64()),
            "g": pa.array([0.1, 1 / 3, 0.1, 0.5] * 4, pa.float32()),
            "id": pa.array(range(16), pa.int64()),
        }
    )
    query: Query = lambda lf: lf.filter(predicate).select("id")  # noqa: E731
    assert_answers_as_the_table(table, query, tmp_path, batch_rows=1, ordered=True)


# -- the property: generated queries, cache == table, errors included ------------------

BATCH_ROWS = st.integers(1, 7)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    """Rows with NaN, infinities, nulls, lists, strings not all numbers, and unused columns."""
    rows = draw(st.integers(0, 24))
    floats = st.one_of(
        st.none(),
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
        st.integers(-6, 6).map(float),
    )
    numbers = st.one_of(st.none(), st.integers(-6, 6))

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(values, min_size=rows, max_size=rows))

    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "g": pa.array(column(st.one_of(st.none(), st.integers(0, 2))), pa.int64()),
            "x": pa.array(column(floats), pa.float64()),
            "i": pa.array(column(numbers), pa.int32()),
            "s": pa.array(column(st.one_of(st.none(), st.sampled_from(["1", "2", "-3", "x"])))),
            "l": pa.array(
                column(st.one_of(st.none(), st.lists(st.integers(0, 3), max_size=2))),
                pa.list_(pa.int64()),
            ),
            "b": pa.array(column(st.one_of(st.none(), st.booleans())), pa.bool_()),
            "unused": pa.array(column(numbers), pa.int64()),
        }
    )


COMPARE = ["__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"]


@st.composite
def safe_parts(draw: st.DrawFn) -> pl.Expr:
    """Parts statistics may judge: a column compared with a literal, null tests, ranges."""
    shape = draw(st.integers(0, 4))
    if shape == 0:
        column = draw(st.sampled_from(["x", "i", "id"]))
        value = draw(
            st.one_of(
                st.integers(-7, 25),
                st.sampled_from([0.5, -2.5, math.nan, math.inf, 2**40]),
            )
        )
        literal = draw(
            st.sampled_from(
                [
                    value,
                    pl.lit(value),
                    pl.lit(value, pl.Float64) if isinstance(value, int) else value,
                ]
            )
        )
        return getattr(pl.col(column), draw(st.sampled_from(COMPARE)))(literal)
    if shape == 1:
        return getattr(
            pl.col(draw(st.sampled_from(["x", "g", "s", "l"]))),
            draw(st.sampled_from(["is_null", "is_not_null"])),
        )()
    if shape == 2:
        low = draw(st.integers(-7, 20))
        return pl.col(draw(st.sampled_from(["x", "i", "id"]))).is_between(
            low, low + draw(st.integers(0, 8))
        )
    if shape == 3:
        return pl.col("b")
    return pl.col("s") == draw(st.sampled_from(["1", "x", "9"]))


#: Parts that raise on some data or for their types. Polars keeps a strict cast
#: above the scan, after the other filters, but pushes the rest into it.
RAISING_PARTS = [
    pl.col("s").cast(pl.Int64, strict=True) > 0,
    pl.col("s") > 3,
    pl.col("i") > pl.lit("a"),
    pl.col("l") == pl.lit(1),
    pl.col("s").str.to_integer(strict=True) > 0,
    pl.col("l").list.to_array(1).arr.first() >= 0,  # lists of another length
    pl.col("l") > pl.lit([1]),
    pl.col("l").list.get(1) > 0,  # out of bounds on shorter lists
    pl.col("s").cast(pl.Int32, strict=True).is_null(),
]


@st.composite
def predicates(draw: st.DrawFn, depth: int = 2) -> pl.Expr:
    shape = draw(st.integers(0, 4 if depth else 1))
    if shape == 0:
        return draw(safe_parts())
    if shape == 1:
        return draw(st.sampled_from(RAISING_PARTS)) if draw(st.booleans()) else draw(safe_parts())
    if shape == 2:
        return ~draw(predicates(depth - 1))
    left, right = draw(predicates(depth - 1)), draw(predicates(depth - 1))
    return left & right if shape == 3 else left | right


@st.composite
def mixed_predicates(draw: st.DrawFn) -> pl.Expr:
    """A safe part that may skip batches, joined with a part that may raise."""
    safe, raising = draw(predicates()), draw(st.sampled_from(RAISING_PARTS))
    joined = [safe & raising, raising & safe, safe | raising, ~safe & ~raising]
    return draw(st.sampled_from(joined))


OTHER = pl.LazyFrame({"g": [0, 1, 1, 5], "w": [10.0, 20.0, 21.0, 50.0]})


@dataclass
class GeneratedQuery:
    """A generated query and what the comparison needs to know of it."""

    name: str
    run: Query
    #: Whether the query defines the order of its rows.
    ordered: bool
    #: Whether at most one part of its predicate may raise (else which error
    #: Polars raises depends on its plan).
    one_error: bool
    predicate: pl.Expr | None


def _raising_parts(predicate: pl.Expr | None) -> int:
    """How many different parts of ``predicate`` may raise."""
    text = "" if predicate is None else str(predicate)
    return sum(str(part) in text for part in RAISING_PARTS)


@st.composite
def queries(draw: st.DrawFn) -> GeneratedQuery:
    """A query, maybe filtered by a generated predicate."""
    predicate = draw(st.one_of(st.none(), predicates(), mixed_predicates()))
    one_error = _raising_parts(predicate) <= 1
    how = draw(st.sampled_from(["inner", "left"]))
    head, tail, offset, length = (draw(st.integers(0, 9)) for _ in range(4))
    steps: dict[str, tuple[Query, bool]] = {
        "window": (lambda lf: lf.select("id", "g", pl.col("x").sum().over("g")), True),
        "rank": (lambda lf: lf.select("id", pl.col("i").rank("min").over("g")), True),
        "ordered_window": (
            lambda lf: lf.select("id", pl.col("i").cum_sum().over("g", order_by="id")),
            True,
        ),
        "with_columns": (
            lambda lf: lf.with_columns(y=pl.col("i") * 2, m=pl.col("x").max().over("g")).select(
                "id", "y", "m"
            ),
            True,
        ),
        "group_by": (
            lambda lf: lf.group_by("g").agg(pl.col("i").sum(), pl.col("x").max(), pl.len()),
            False,
        ),
        "unique": (lambda lf: lf.select("g", "b").unique(), False),
        "join": (lambda lf: lf.join(OTHER, on="g", how=how).select("id", "w"), False),
        "head": (lambda lf: lf.select("id", "x").head(head), True),
        "tail": (lambda lf: lf.select("id", "i").tail(tail), True),
        "slice": (lambda lf: lf.select("id", "s").slice(offset, length), True),
        "count": (lambda lf: lf.select(pl.len()), True),
    }
    name = draw(st.sampled_from(sorted(steps)))
    step, ordered = steps[name]
    if predicate is None:
        return GeneratedQuery(name, step, ordered, one_error, predicate)
    if draw(st.booleans()):
        return GeneratedQuery(
            f"filter({predicate}) then {name}",
            lambda lf: step(lf.filter(predicate)),
            ordered,
            one_error,
            predicate,
        )
    # A limit before the filter: Polars pushes both into the scan.
    limit = draw(st.integers(0, 12))
    return GeneratedQuery(
        f"head({limit}).filter({predicate}) then {name}",
        lambda lf: step(lf.head(limit).filter(predicate)),
        ordered,
        one_error,
        predicate,
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(table=tables(), query=queries(), batch_rows=BATCH_ROWS)
def test_generated_queries_answer_as_over_the_table(
    table: pa.Table, query: GeneratedQuery, batch_rows: int
) -> None:
    note(query.name)
    with tempfile.TemporaryDirectory() as directory:
        outcome = assert_answers_as_the_table(
            table,
            query.run,
            Path(directory),
            batch_rows=batch_rows,
            ordered=query.ordered,
            same_kind=query.one_error,
            predicate=query.predicate,
        )
    event(outcome[1] if outcome == ("error", "folded by the table") else outcome[0])
    if outcome[0] == "error":
        event(f"raises {outcome[1]}")
