"""Polars through ``batchcorder.scan``: batches a predicate excludes are skipped, in Polars' meaning.

The differential tests (``tests/differential``) compare the scan with Polars
over the same table on generated data and predicates. Here: the skipping is
reached by a plain ``filter``, it reads the statistics of the predicate's
columns only, and it keeps Polars' meaning where it differs from Arrow's (NaN
above every number, infinities, categorical order), in every storage mode.

Internal parts under test: ``batchcorder._scan.predicates``, ``batchcorder._scan.statistics``, ``batchcorder._scan.tree``, ``batchcorder.adapters._polars_pruning``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import operator
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from tests.conftest import MODES, mode_kwargs

import batchcorder
from batchcorder import StreamCache
from batchcorder._scan.predicates import select_batches
from batchcorder._scan.statistics import BatchStatistics
from batchcorder._scan.tree import Call, FieldRef, Literal
from batchcorder.adapters._polars_pruning import predicate_node
from batchcorder.adapters.polars import _scan_batches, _Skipping

START = dt.datetime(2024, 1, 1)
NAN = math.nan
ROWS, BATCH_ROWS = 2_000, 100


def events() -> pa.Table:
    """Time-ordered rows; ``f`` without NaN in most batches, NaN and nulls in some."""
    return pa.table(
        {
            "ts": pa.array(
                [START + dt.timedelta(seconds=n) for n in range(ROWS)], pa.timestamp("us")
            ),
            "tz": pa.array(
                [
                    START.replace(tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)
                    for n in range(ROWS)
                ],
                pa.timestamp("us", tz="Europe/Paris"),
            ),
            "k": pa.array([n % 5 for n in range(ROWS)], pa.int16()),
            "f": pa.array(
                [math.nan if n % 700 == 3 else None if n % 90 == 0 else n / 8 for n in range(ROWS)]
            ),
            "s": pa.array([f"s{n % 13:02d}" for n in range(ROWS)], pa.large_string()),
            "cat": pa.array([["b", "a", "c"][n % 3] for n in range(ROWS)]).dictionary_encode(),
        }
    )


def _cache(mode: str, tmp_path: Path) -> StreamCache:
    cache = StreamCache(events().to_reader(max_chunksize=BATCH_ROWS), **mode_kwargs(mode, tmp_path))
    cache.ingest_all()
    return cache


PREDICATES = [
    (pl.col("ts") >= START + dt.timedelta(seconds=500))
    & (pl.col("ts") < START + dt.timedelta(seconds=530)),
    pl.col("ts").is_between(START, START + dt.timedelta(seconds=3), closed="right"),
    pl.col("tz") > dt.datetime(2024, 1, 2, 8, 0, tzinfo=ZoneInfo("Europe/Paris")),
    pl.col("f") < NAN,  # Polars: every number is below NaN
    pl.col("f") >= float("inf"),
    pl.col("f") == 2.5,
    pl.col("f").is_null() | (pl.col("k") == 3),
    ~(pl.col("ts") < START + dt.timedelta(seconds=1_990)),
    pl.col("cat") < "b",  # a Categorical: no bounds are used
    (pl.col("s") == "s03") & pl.col("f").is_not_null(),
    pl.col("k") > 1.5,
]


@pytest.mark.parametrize("mode", MODES)
def test_a_filter_answers_as_polars_over_the_table(mode: str, tmp_path: Path) -> None:
    cache = _cache(mode, tmp_path)
    frame = pl.from_arrow(events())
    assert isinstance(frame, pl.DataFrame)
    scanned = batchcorder.scan(cache)
    for predicate in PREDICATES:
        expected = frame.lazy().filter(predicate).select("ts", "f").collect()
        got = scanned.filter(predicate).select("ts", "f").collect()
        assert_frame_equal(got, expected, check_exact=True), str(predicate)
    assert "ts" in cache.statistics.columns
    assert "cat" not in cache.statistics.columns


@pytest.mark.parametrize("mode", MODES)
def test_a_cast_view_skips_by_statistics_of_its_own_values(mode: str, tmp_path: Path) -> None:
    """A view's batches are the cache's, cast: its statistics are of the cast values."""
    cache = _cache(mode, tmp_path)
    target = pa.schema(
        [field.with_type(pa.float32()) if field.name == "f" else field for field in cache.schema]
    )
    view = cache.cast(target)
    frame = pl.from_arrow(events().cast(target))
    assert isinstance(frame, pl.DataFrame)
    scanned = batchcorder.scan(view)
    for predicate in [*PREDICATES, pl.col("f") > 100.1, pl.col("f").is_in([2.5, 3.0])]:
        expected = frame.lazy().filter(predicate).select("ts", "f").collect()
        got = scanned.filter(predicate).select("ts", "f").collect()
        assert_frame_equal(got, expected, check_exact=True), str(predicate)
    assert "ts" in view.statistics.columns
    assert view.statistics is not cache.statistics
    assert "ts" not in cache.statistics.columns


def test_a_range_on_the_clustered_column_converts_few_batches() -> None:
    cache = _cache("memory", Path())
    predicate = (pl.col("ts") >= START + dt.timedelta(seconds=1_000)) & (
        pl.col("ts") < START + dt.timedelta(seconds=1_150)
    )
    skipping = _Skipping(cache)
    selection = skipping.selection(list(cache.reader()), predicate, cache.schema)
    assert selection is not None
    # 150 rows in batches of 100: batch 10 whole, half of batch 11.
    assert selection.keep.nonzero()[0].tolist() == [10, 11]
    assert selection.whole.nonzero()[0].tolist() == [10]
    frames = list(_scan_batches(cache, cache.schema, ["k"], predicate, None, skipping))
    assert sum(frame.height for frame in frames) == 150


def test_a_count_reads_one_frame_without_columns() -> None:
    cache = _cache("memory", Path())
    (frame,) = _scan_batches(cache, cache.schema, [], None, None, None)
    assert frame.shape == (ROWS, 0)


def test_no_skipping_without_the_whole_cache() -> None:
    # A cache not yet exhausted streams as far as the query reads; one with
    # max_readers frees what its readers pass: neither holds every batch.
    for cache in (
        StreamCache(events().to_reader(max_chunksize=BATCH_ROWS)),
        StreamCache(events().to_reader(max_chunksize=BATCH_ROWS), max_readers=3),
    ):
        if cache.max_readers:
            cache.ingest_all()
        got = batchcorder.scan(cache).filter(pl.col("k") == 4).select(pl.len()).collect().item()
        assert got == ROWS // 5
        assert cache.statistics.columns == []


def test_predicates_translate_to_what_statistics_judge() -> None:
    schema = events().schema
    node = predicate_node((pl.col("k") > pl.lit(2, pl.Int16)) | pl.col("s").is_null(), schema)
    assert node == Call(
        "or_kleene",
        (
            Call("greater", (FieldRef("k"), Literal(pa.scalar(2, pa.int16()))), None),
            Call("is_null", (FieldRef("s"),), None),
        ),
        None,
    )
    # NaN and infinities are written as null, categorical columns have their own
    # order, and a string function may raise: a predicate with any part not
    # understood is not judged at all, not even its other parts.
    for predicate in (
        pl.col("f") < NAN,
        pl.col("cat") == "a",
        pl.col("s").str.starts_with("s1"),
        (pl.col("k") > 2) & pl.col("s").str.starts_with("s1"),
        (pl.col("k") > 2) | (pl.col("f") < NAN),
    ):
        assert predicate_node(predicate, schema) is None, predicate
    # A float32 literal is written as its shortest decimal (0.1) but compared as
    # its own value, 0.100000001490116...
    node = predicate_node(pl.col("f") < pl.lit(0.1, pl.Float32), schema)
    assert node == Call("less", (FieldRef("f"), Literal(pa.scalar(0.10000000149011612))), None)


# -- every decision against Polars evaluating the predicate ------------------------

#: Examples of the decision property; for a longer run:
#: ``BATCHCORDER_STATISTICS_EXAMPLES=2000 .venv/bin/python -m pytest tests/adapters/test_polars_speedpaths.py``
DECISION_EXAMPLES = int(os.environ.get("BATCHCORDER_STATISTICS_EXAMPLES", "80"))
NUMBER_COLUMNS = {
    "i8": pa.int8(),
    "i64": pa.int64(),
    "u8": pa.uint8(),
    "f64": pa.float64(),
    "f32": pa.float32(),
}
NUMBER_SCHEMA = pa.schema(list(NUMBER_COLUMNS.items()))
LITERAL_TYPES = [pl.Int8, pl.Int64, pl.UInt8, pl.UInt64, pl.Float32, pl.Float64]
COMPARISONS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]
#: Bare numbers: mostly near the batches' values, some at or past the types' ends.
INTS = st.one_of(
    st.integers(-4, 6),
    st.sampled_from([-(2**63), -300, -129, 127, 128, 255, 300, 2**53 + 1, 2**63 - 1]),
)
FLOATS = st.one_of(
    st.integers(-4, 6).map(float),
    st.sampled_from([-math.inf, -1e300, -2.5, -0.0, 0.5, 2.5, 1e300, math.inf]),
    # Fractions a float32 holds only approximately.
    st.sampled_from([0.1, 1 / 3, -0.1]),
)


def _values(data_type: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_floating(data_type):
        return st.one_of(st.none(), FLOATS, st.just(math.nan))
    info = np.iinfo(np.dtype(str(data_type)))  # "int8", "uint16": numpy names, no pandas
    return st.one_of(
        st.none(),
        st.integers(max(-4, int(info.min)), 6),
        st.integers(int(info.min), int(info.max)),
    )


@st.composite
def number_batches(draw: st.DrawFn) -> list[pa.RecordBatch]:
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        rows = draw(st.integers(0, 6))
        columns = {
            name: pa.array(
                draw(st.lists(_values(data_type), min_size=rows, max_size=rows)), data_type
            )
            for name, data_type in NUMBER_COLUMNS.items()
        }
        batches.append(pa.record_batch(columns, schema=NUMBER_SCHEMA))
    return batches


@st.composite
def dynamic_predicates(draw: st.DrawFn, depth: int = 2) -> pl.Expr:
    """Comparisons of a column with a bare Python number, is_between, &, |, ~, is_null."""
    column = pl.col(draw(st.sampled_from(list(NUMBER_COLUMNS))))
    shape = draw(st.integers(0, 5 if depth else 2))
    if shape == 0:
        value: Any = draw(st.one_of(INTS, FLOATS))
        compare = draw(st.sampled_from(COMPARISONS))
        if draw(st.booleans()):
            # A typed literal: Polars compares it with the column in their common type.
            literal_type = draw(st.sampled_from(LITERAL_TYPES))
            # A value the type cannot hold stays a bare number.
            with contextlib.suppress(pl.exceptions.PolarsError, OverflowError, TypeError):
                value = pl.lit(value, literal_type)
        # A number on either side.
        return compare(value, column) if draw(st.booleans()) else compare(column, value)
    if shape == 1:
        low, high = sorted([draw(INTS), draw(INTS)])
        return column.is_between(
            low, high, closed=draw(st.sampled_from(["both", "left", "right", "none"]))
        )
    if shape == 2:
        return column.is_null()
    left = draw(dynamic_predicates(depth - 1))
    if shape == 3:
        return ~left
    right = draw(dynamic_predicates(depth - 1))
    return left & right if shape == 4 else left | right


@settings(
    max_examples=DECISION_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(drawn=number_batches(), predicate=dynamic_predicates())
def test_bare_numbers_skip_only_batches_polars_keeps_no_row_of(
    drawn: list[pa.RecordBatch], predicate: pl.Expr
) -> None:
    node = predicate_node(predicate, NUMBER_SCHEMA)
    if node is None:
        return  # not judged: every row is evaluated
    selection = select_batches(node, drawn, BatchStatistics())
    for index, batch in enumerate(drawn):
        # A judged predicate cannot raise: batches it skips would hide the error.
        mask = pl.from_arrow(batch).select(predicate.alias("m")).to_series()
        values = mask.to_list() if mask.len() == batch.num_rows else mask.to_list() * batch.num_rows
        if not selection.keep[index]:
            assert True not in values, (index, predicate, batch.to_pydict())
        if selection.whole[index]:
            assert all(value is True for value in values), (index, predicate, batch.to_pydict())
