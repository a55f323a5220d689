"""Skipping batches never changes an answer of ``batchcorder.dataset`` or hides an error.

Every scan of a cache's dataset is held to a pyarrow dataset of the plain
table (``ds.dataset(table)``): the same rows, or an error of the same kind.

- ``is_in`` matches the value set as pyarrow casts it to the column's type
  (rounding float64 to float32, a float to a decimal's scale): an exhaustive
  grid of numeric, decimal, temporal, string and dictionary column types
  against value sets of every type, and a property over drawn values.
- A filter that may raise on some data (a cast, arithmetic, a string
  function) runs on every batch; a filter that fails whatever the data
  fails even when every batch would be skipped; in every storage mode and
  ingestion state, through every entry point.
- A property over drawn filters (comparisons with literals of other types,
  ``is_in`` over mixed types, AND, OR, NOT, null checks, casts that can fail,
  checked and unchecked arithmetic) compares ``to_table``, ``count_rows``,
  ``head`` and ``scanner()``.

``BATCHCORDER_EXACTNESS_EXAMPLES`` sets the examples of each property (60).

Internal parts under test: ``batchcorder._cache_dataset``, ``batchcorder._scan.arrow_format``, ``batchcorder._scan.predicates``, ``batchcorder._scan.statistics``, ``batchcorder.adapters._duckdb_dataset``.
"""

from __future__ import annotations

import decimal
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batchcorder
from batchcorder import StreamCache
from batchcorder._cache_dataset import CacheDataset
from batchcorder._scan.arrow_format import decode
from batchcorder._scan.predicates import cannot_raise
from batchcorder._scan.statistics import BatchStatistics
from batchcorder.adapters import datafusion as datafusion_adapter
from batchcorder.adapters import duckdb as duckdb_adapter
from batchcorder.adapters._duckdb_dataset import DuckDBDataset

EXAMPLES = int(os.environ.get("BATCHCORDER_EXACTNESS_EXAMPLES", "60"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- is_in against the column's type ----------------------------------------------

NUMERIC = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
    pa.float16(),
    pa.float32(),
    pa.float64(),
    pa.decimal128(3, 0),
    pa.decimal128(5, 2),
    pa.decimal128(12, 3),
    pa.decimal128(38, 10),
    pa.decimal256(40, 2),
]
TEMPORAL = [
    pa.date32(),
    pa.date64(),
    pa.timestamp("s"),
    pa.timestamp("ms"),
    pa.timestamp("us", "UTC"),
    pa.timestamp("ns", "Europe/Paris"),
    pa.time32("s"),
    pa.time32("ms"),
    pa.time64("us"),
    pa.time64("ns"),
    pa.duration("s"),
    pa.duration("ms"),
    pa.duration("ns"),
]
TEXT = [pa.string(), pa.large_string(), pa.binary()]
SCALAR_TYPES = NUMERIC + TEMPORAL + TEXT
DICTIONARIES = [
    pa.dictionary(pa.int32(), value_type)
    for value_type in (
        pa.int16(),
        pa.uint64(),
        pa.float32(),
        pa.float64(),
        pa.decimal128(5, 2),
        pa.string(),
        pa.timestamp("ms"),
        pa.date32(),
    )
]
COLUMN_TYPES = SCALAR_TYPES + DICTIONARIES
VALUE_SET_TYPES = [
    *SCALAR_TYPES,
    pa.dictionary(pa.int32(), pa.float64()),
    pa.dictionary(pa.int32(), pa.string()),
]
#: Values that round, overflow or truncate in some of the types.
CANDIDATES = [0.1, 1.225, 1.23, 2.0, 1.5, -1.0, 300.0, 1e20, 0.0, -0.0, 86400.0, math.nan, math.inf]


def _one_value(value: float, data_type: pa.DataType) -> pa.Array | None:
    """``value`` as a one-value array of ``data_type`` (cast without checks), or None."""
    finite = math.isfinite(value)
    sources: list[pa.Array] = [pa.array([value])]
    if finite:
        digits = decimal.Decimal(repr(value)).quantize(decimal.Decimal("0.000001"))
        sources.append(pa.array([digits], pa.decimal128(38, 6)))
        if abs(value) < 2**63:
            sources.append(pa.array([int(value)], pa.int64()))
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        sources = [pa.array([str(value)])]
    if pa.types.is_binary(data_type):
        sources = [pa.array([str(value).encode()])]
    for source in sources:
        try:
            return source.cast(data_type, safe=False)
        except (pa.ArrowException, ValueError):
            continue
    return None


def _values(data_type: pa.DataType) -> list[pa.Array]:
    if pa.types.is_dictionary(data_type):
        return [array.dictionary_encode() for array in _values(data_type.value_type)]
    arrays = (_one_value(value, data_type) for value in CANDIDATES)
    return [array for array in arrays if array is not None]


def _column(data_type: pa.DataType) -> pa.Array:
    """Every candidate that ``data_type`` holds, and a null."""
    value_type = data_type.value_type if pa.types.is_dictionary(data_type) else data_type
    array = pa.concat_arrays([*_values(value_type), pa.nulls(1, value_type)])
    if pa.types.is_dictionary(data_type):
        array = array.dictionary_encode().cast(data_type)
    return array


def _answer(run: Callable[[], pa.Table]) -> list[Any] | type[BaseException]:
    """The rows' ``n`` a scan keeps, sorted, or the kind of error it raises."""
    try:
        return sorted(run().column("n").to_pylist())
    except (pa.ArrowException, ValueError, TypeError, KeyError) as error:
        return type(error)


def _one_row_batches(column: pa.Array) -> tuple[pa.Table, list[pa.RecordBatch]]:
    table = pa.table({"x": column, "n": pa.array(range(len(column)), pa.int64())})
    return table, table.to_batches(max_chunksize=1)


@pytest.mark.parametrize("column_type", COLUMN_TYPES, ids=str)
def test_is_in_matches_the_value_set_as_cast_to_the_column_type(column_type: pa.DataType) -> None:
    """Every value-set type and candidate: the answer of a plain dataset, the same error kind.

    One row per batch, so a wrong skip loses a row: every batch holding a
    row the plain dataset keeps must be kept, and one taken whole must be
    such a row. Where the plain dataset raises, so do both scans; every
    third value set is also scanned and its rows compared.
    """
    table, batches = _one_row_batches(_column(column_type))
    plain = ds.dataset(table)
    statistics = BatchStatistics()
    skipping = CacheDataset(batches, table.schema, statistics)
    streaming = DuckDBDataset(batches, table.schema, statistics)
    value_sets = [value_set for data_type in VALUE_SET_TYPES for value_set in _values(data_type)]
    for index, value_set in enumerate(value_sets):
        expression = pc.field("x").isin(value_set)
        case = f"{column_type} isin {value_set.type} {value_set.to_string(indent=0, window=8)}"
        expected = _answer(lambda e=expression: plain.to_table(columns=["n"], filter=e))
        if isinstance(expected, list):
            selection = skipping.selection(expression)
            if selection is not None:
                assert selection.keep[expected].all(), f"{case}: a batch with a kept row skipped"
                assert set(np.flatnonzero(selection.whole)) <= set(expected), case
        if isinstance(expected, list) and index % 3:
            continue
        got = _answer(lambda e=expression: skipping.to_table(columns=["n"], filter=e))
        reader = _answer(
            lambda e=expression: streaming.scanner(columns=["n"], filter=e).to_reader().read_all()
        )
        assert got == expected, case
        assert reader == expected, f"{case} (reader)"


def test_the_examples_of_rounding_value_sets() -> None:
    """float64 0.1 in a float32 column, 1.225 at a decimal's scale of 2: kept, as pyarrow keeps them."""
    cases = [
        (pa.array([0.1, 0.1, 2.0], pa.float32()), [0.1], 2),
        (
            pa.array([decimal.Decimal("1.23"), decimal.Decimal("5")], pa.decimal128(5, 2)),
            [1.225],
            1,
        ),
        (pa.array([1.0, 2.0], pa.float32()), pa.array([decimal.Decimal("1.0000000001")]), 1),
        (pa.array([0.1, 3.0], pa.float32()).dictionary_encode(), [0.1], 1),
    ]
    for column, value_set, rows in cases:
        table = pa.table({"x": column})
        expression = pc.field("x").isin(value_set)
        assert ds.dataset(table).to_table(filter=expression).num_rows == rows
        cache = StreamCache(table.to_reader(max_chunksize=1))
        assert batchcorder.dataset(cache).to_table(filter=expression).num_rows == rows
        assert batchcorder.dataset(cache).count_rows(filter=expression) == rows


@st.composite
def _is_in_cases(draw: st.DrawFn) -> tuple[pa.Array, pa.Array]:
    """A column of a drawn type and a value set of another, from shared values."""
    numbers = st.one_of(
        st.sampled_from(CANDIDATES),
        st.floats(-1e6, 1e6, width=32),
        st.integers(-(2**40), 2**40).map(float),
        st.decimals(-999, 999, places=3).map(float),
    )
    column_type = draw(st.sampled_from(COLUMN_TYPES))
    value_type = column_type.value_type if pa.types.is_dictionary(column_type) else column_type
    set_type = draw(st.sampled_from(VALUE_SET_TYPES))
    column_values = [_one_value(v, value_type) for v in draw(st.lists(numbers, max_size=8))]
    dictionary_set = pa.types.is_dictionary(set_type)
    set_value_type = set_type.value_type if dictionary_set else set_type
    drawn_set = draw(st.lists(numbers, min_size=1, max_size=4))
    set_values = [_one_value(v, set_value_type) for v in drawn_set]
    column = pa.concat_arrays(
        [pa.nulls(0, value_type)] + [array for array in column_values if array is not None]
    )
    if draw(st.booleans()):
        column = pa.concat_arrays([column, pa.nulls(1, value_type)])
    if pa.types.is_dictionary(column_type):
        column = column.dictionary_encode().cast(column_type)
    value_set = pa.concat_arrays(
        [pa.nulls(0, set_value_type)] + [array for array in set_values if array is not None]
    )
    if dictionary_set:
        value_set = value_set.dictionary_encode()
    return column, value_set


@PROPERTY
@given(case=_is_in_cases(), batch_rows=st.integers(1, 3))
def test_is_in_over_drawn_values_answers_as_a_plain_dataset(
    case: tuple[pa.Array, pa.Array], batch_rows: int
) -> None:
    column, value_set = case
    table = pa.table({"x": column, "n": pa.array(range(len(column)), pa.int64())})
    batches = table.to_batches(max_chunksize=batch_rows)
    expression = pc.field("x").isin(value_set)
    expected = _answer(lambda: ds.dataset(table).to_table(columns=["n"], filter=expression))
    data = CacheDataset(batches, table.schema, BatchStatistics())
    assert _answer(lambda: data.to_table(columns=["n"], filter=expression)) == expected


# -- errors are never skipped ------------------------------------------------------

STATES = ("fresh", "partly", "fully")


@pytest.fixture(params=["memory", "disk"])
def cache_options(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """StreamCache options of a storage mode; disk mode reads from the file (1-byte hot layer)."""
    if request.param == "memory":
        return {}
    return {"disk_path": tmp_path, "disk_capacity": 1 << 30, "memory_capacity": 1}


def _ingested(cache: StreamCache, state: str) -> StreamCache:
    """``cache`` as fresh (nothing pulled), partly ingested (one batch) or fully ingested."""
    if state == "partly":
        reader = cache.reader()
        reader.read_next_batch()
        reader.close()
    elif state == "fully":
        cache.ingest_all()
    return cache


def _error_table() -> pa.Table:
    """``s`` fails to cast to int64 in the last batch only; ``x`` rules out every batch above 100."""
    return pa.table(
        {
            "x": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
            "s": pa.array(["1", "2", "3", "4", "5", "abc"]),
        }
    )


ENTRY_POINTS: dict[str, Callable[[Any, pc.Expression], Any]] = {
    "to_table": lambda data, f: data.to_table(filter=f).num_rows,
    "count_rows": lambda data, f: data.count_rows(filter=f),
    "head": lambda data, f: data.head(10, filter=f).num_rows,
    "to_batches": lambda data, f: sum(batch.num_rows for batch in data.to_batches(filter=f)),
    "scanner.to_reader": lambda data, f: data.scanner(filter=f).to_reader().read_all().num_rows,
    "scanner.to_table": lambda data, f: data.scanner(filter=f).to_table().num_rows,
    "scanner.count_rows": lambda data, f: data.scanner(filter=f).count_rows(),
    "scanner.columns": lambda data, f: data.scanner(columns=["x"], filter=f).to_table().num_rows,
    "fragments": lambda data, f: sum(
        batch.num_rows
        for fragment in data.get_fragments(filter=f)
        for batch in fragment.scanner(schema=data.schema, filter=f).to_batches()
    ),
}
DATASETS: dict[str, Callable[[StreamCache], Any]] = {
    "batchcorder.dataset": batchcorder.dataset,
    "semantics=polars": lambda cache: batchcorder.dataset(cache, semantics="polars"),
    "datafusion.dataset": datafusion_adapter.dataset,
    "duckdb.dataset": duckdb_adapter.dataset,
}
#: Filters raising over the plain table: on the data (a cast of "abc") or whatever it holds.
FAILING_FILTERS = {
    "cast, every batch skipped by x": (pc.field("x") > 100) & (pc.field("s").cast(pa.int64()) > 0),
    "cast, every batch taken whole by x": (pc.field("x") > 0)
    | (pc.field("s").cast(pa.int64()) > 0),
    "checked arithmetic overflows": (pc.field("x") > 100)
    & (pc.Expression._call("multiply_checked", [pc.field("x"), pc.scalar(2**62)]) > 0),
    "division by zero": (pc.field("x") < 0)
    & (pc.Expression._call("divide", [pc.field("x"), pc.scalar(0)]) > 0),
    "is_in of a type the column does not take": (pc.field("x") > 100)
    & pc.field("s").isin(pa.array([1, 2])),
    "string compared with a number": (pc.field("x") > 100) & (pc.field("s") > 1),
    "string function on a number": (pc.field("x") > 100)
    & pc.Expression._call("utf8_length", [pc.field("x")]).is_valid(),
}


def _outcome(run: Callable[[], Any]) -> Any:
    try:
        return run()
    except (pa.ArrowException, ValueError, TypeError, KeyError) as error:
        return type(error)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=str)
@pytest.mark.parametrize("name", FAILING_FILTERS, ids=str)
def test_a_filter_raising_over_the_plain_table_raises_over_the_cache(
    name: str, entry: str, state: str, cache_options: dict[str, Any]
) -> None:
    table = _error_table()
    expression = FAILING_FILTERS[name]
    run = ENTRY_POINTS[entry]
    expected = _outcome(lambda: run(ds.dataset(table), expression))
    assert isinstance(expected, type), f"{name}: the plain table answered {expected}"
    for make in DATASETS.values():
        cache = StreamCache(table.to_reader(max_chunksize=2), **cache_options)
        data = make(_ingested(cache, state))
        got = _outcome(lambda data=data: run(data, expression))
        # head() may stop before the failing batch; over the plain table it did not.
        assert got is expected, f"{name} via {entry}: {got}, plain: {expected}"
        cache.close()


def test_the_datafusion_dataset_raises_where_a_plain_one_does() -> None:
    """DataFusion's dataset, used directly: fragments and scanner, as above."""
    table = _error_table()
    cache = StreamCache(table.to_reader(max_chunksize=2))
    data = datafusion_adapter.dataset(cache)
    for expression in FAILING_FILTERS.values():
        with pytest.raises((pa.ArrowException, TypeError, ValueError)):
            ds.dataset(table).to_table(filter=expression)
        with pytest.raises((pa.ArrowException, TypeError, ValueError)):
            for part in data.get_fragments(expression):
                list(part.scanner(data.schema, columns=["x"], filter=expression).to_batches())
        with pytest.raises((pa.ArrowException, TypeError, ValueError)):
            data.scanner(columns=["x"], filter=expression).to_reader().read_all()


def test_only_filters_that_cannot_raise_skip() -> None:
    schema = _error_table().schema
    safe = [
        pc.field("x") > 3,
        (pc.field("x") > 3) | pc.field("s").is_null(),
        pc.field("s").isin(["1", None]),
        ~(pc.field("x") == pa.scalar(3, pa.int8())),
        pc.if_else(pc.field("x") > 2, pc.field("x") < 5, pc.scalar(pa.scalar(None, pa.bool_()))),
    ]
    risky = [
        pc.field("s").cast(pa.int64()) > 0,
        pc.Expression._call("add", [pc.field("x"), pc.scalar(1)]) > 0,
        pc.field("x") > 1.5,  # int64 to float64 checks every value
        pc.field("x") > pa.scalar(1, pa.uint64()),
        pc.field("x").isin([1.5]),  # the value set does not cast: the column is cast
        pc.Expression._call("utf8_length", [pc.field("s")]) > 1,
    ]
    for expression in safe:
        assert cannot_raise(decode(expression), schema), expression
    for expression in risky:
        assert not cannot_raise(decode(expression), schema), expression


def test_comparisons_cannot_raise_only_where_every_value_casts() -> None:
    """The type pairs judged safe compare their extreme values without an error."""
    extremes: dict[pa.DataType, pa.Array] = {}
    for bits in (8, 16, 32, 64):
        for signed in (True, False):
            data_type = getattr(pa, f"{'' if signed else 'u'}int{bits}")()
            low = -(2 ** (bits - 1)) if signed else 0
            high = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
            extremes[data_type] = pa.array([low, high, high - 1], data_type)
    for data_type in (pa.float32(), pa.float64()):
        extremes[data_type] = pa.array([math.nan, math.inf, -3.4e38, 1.5], data_type)
    extremes[pa.date32()] = pa.array([2**31 - 1, -(2**31)], pa.int32()).cast(pa.date32())
    extremes[pa.date64()] = pa.array([2**63 - 1], pa.int64()).cast(pa.date64())
    extremes[pa.string()] = pa.array(["a"])
    extremes[pa.large_string()] = pa.array(["b"], pa.large_string())
    for left, left_values in extremes.items():
        for right, right_values in extremes.items():
            schema = pa.schema([("a", left), ("b", right)])
            expression = pc.field("a") < pc.field("b")
            if not cannot_raise(decode(expression), schema):
                continue
            for value in right_values:
                table = pa.table({"a": left_values, "b": pa.repeat(value, len(left_values))})
                ds.dataset(table).to_table(filter=expression)  # raises if wrongly judged


# -- drawn filters against a plain dataset ----------------------------------------

NAN = math.nan
TABLE_VALUES: dict[str, tuple[pa.DataType, list[Any]]] = {
    "x": (pa.int64(), [0, 1, -1, 7, 2**53 + 1, 2**62, -(2**63)]),
    "u": (pa.uint64(), [0, 3, 2**64 - 1]),
    "f": (pa.float64(), [NAN, math.inf, -math.inf, -0.0, 0.0, 0.5, 1.5, -2.0]),
    "g": (pa.float32(), [NAN, 0.1, 1.0, -1.0]),
    "s": (pa.string(), ["1", "-5", "abc", "", "7"]),
    "dec": (pa.decimal128(5, 2), [decimal.Decimal("1.23"), decimal.Decimal("-0.50")]),
    "ts": (pa.timestamp("s"), [0, 86_400, 2**35]),
    "cat": (pa.dictionary(pa.int32(), pa.string()), ["a", "b", "1"]),
}
TABLE_SCHEMA = pa.schema([(name, data_type) for name, (data_type, _) in TABLE_VALUES.items()])


@st.composite
def drawn_batches(draw: st.DrawFn) -> list[pa.RecordBatch]:
    """1 to 5 batches of 0 to 4 rows; values clustered per batch sometimes, nulls too."""
    batches = []
    for _ in range(draw(st.integers(1, 5))):
        rows = draw(st.integers(0, 4))
        arrays = []
        for name, (data_type, values) in TABLE_VALUES.items():
            palette = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
            column = draw(
                st.lists(
                    st.one_of(st.none(), st.sampled_from(palette)), min_size=rows, max_size=rows
                )
            )
            if name == "cat":
                arrays.append(pa.array(column, pa.string()).dictionary_encode().cast(data_type))
            elif name == "ts":
                arrays.append(pa.array(column, pa.int64()).cast(data_type))
            else:
                arrays.append(pa.array(column, data_type))
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=TABLE_SCHEMA))
    return batches


LITERALS: dict[str, list[Any]] = {
    "x": [3, pa.scalar(2, pa.int8()), 1.5, pa.scalar(3, pa.uint64()), "7", None],
    "u": [2, pa.scalar(1, pa.uint8()), -1, 0.5],
    "f": [0.5, NAN, -0.0, pa.scalar(1.0, pa.float32()), 1, pa.scalar(None, pa.float64())],
    "g": [0.1, pa.scalar(0.1, pa.float32()), NAN, 1],
    "s": ["1", "abc", ""],
    "dec": [pa.scalar(decimal.Decimal("1.23"), pa.decimal128(5, 2)), 1.225, 1],
    "ts": [pa.scalar(86_400, pa.timestamp("s")), pa.scalar(1_000, pa.timestamp("ms"))],
    "cat": ["a", "1"],
}
VALUE_SETS: dict[str, list[pa.Array]] = {
    "x": [pa.array([1, 7]), pa.array([1.5, 0.0]), pa.array([-1], pa.int8()), pa.array(["7"])],
    "u": [pa.array([3]), pa.array([-1, 3])],
    "f": [pa.array([0.5, NAN]), pa.array([0.0, None]), pa.array([1], pa.int32())],
    "g": [pa.array([0.1]), pa.array([1, 2])],
    "s": [pa.array(["1", "abc"]), pa.array(["1"], pa.large_string())],
    "dec": [pa.array([1.225]), pa.array([decimal.Decimal("1.23")])],
    "ts": [pa.array([86_400_000], pa.timestamp("ms")), pa.array([1_500], pa.timestamp("ms"))],
    "cat": [pa.array(["a", None]), pa.array(["b"])],
}
COMPARISONS = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]


def _call(function: str, *arguments: pc.Expression) -> pc.Expression:
    return pc.Expression._call(function, list(arguments))


@st.composite
def leaves(draw: st.DrawFn) -> pc.Expression:
    """A comparison, is_in, null check, failing cast or arithmetic over one column."""
    name = draw(st.sampled_from(list(TABLE_VALUES)))
    column = pc.field(name)
    shape = draw(
        st.sampled_from(["compare", "compare", "is_in", "null", "cast", "arithmetic", "string"])
    )
    if shape == "compare":
        literal = pc.scalar(draw(st.sampled_from(LITERALS[name])))
        left, right = draw(st.sampled_from([(column, literal), (literal, column)]))
        return _call(draw(st.sampled_from(COMPARISONS)), left, right)
    if shape == "is_in":
        return column.isin(draw(st.sampled_from(VALUE_SETS[name])))
    if shape == "null":
        return draw(
            st.sampled_from([column.is_null(), column.is_valid(), column.is_null(nan_is_null=True)])
        )
    if shape == "cast":
        target = draw(st.sampled_from([pa.int64(), pa.int32(), pa.int8(), pa.float32()]))
        return _call(draw(st.sampled_from(COMPARISONS)), column.cast(target), pc.scalar(1))
    if shape == "arithmetic":
        function = draw(st.sampled_from(["add", "add_checked", "multiply_checked", "divide"]))
        operand = pc.scalar(draw(st.sampled_from([0, 1, 2**62])))
        return _call("greater", _call(function, column, operand), pc.scalar(0))
    return _call("greater", _call("utf8_length", column), pc.scalar(0))


@st.composite
def drawn_filters(draw: st.DrawFn, depth: int = 2) -> pc.Expression:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(leaves())
    shape = draw(st.sampled_from(["and", "or", "not"]))
    if shape == "not":
        return ~draw(drawn_filters(depth - 1))
    left, right = draw(drawn_filters(depth - 1)), draw(drawn_filters(depth - 1))
    return left & right if shape == "and" else left | right


SCANS: dict[str, Callable[[Any, pc.Expression], Any]] = {
    "to_table": lambda data, f: _sorted_rows(data.to_table(filter=f)),
    "count_rows": lambda data, f: data.count_rows(filter=f),
    "head": lambda data, f: data.head(3, columns=["x"], filter=f).num_rows,
    "scanner": lambda data, f: _sorted_rows(
        data.scanner(columns=["x", "s"], filter=f).to_reader().read_all()
    ),
}


def _sorted_rows(table: pa.Table) -> list[str]:
    """The rows as strings, sorted (NaN equal to itself)."""
    return sorted(map(repr, table.to_pylist()))


def _cache_in(directory: str | None, batches: list[pa.RecordBatch]) -> StreamCache:
    reader = pa.RecordBatchReader.from_batches(TABLE_SCHEMA, batches)
    if directory is None:
        return StreamCache(reader)
    return StreamCache(reader, disk_path=directory, disk_capacity=1 << 30, memory_capacity=1)


@PROPERTY
@given(
    batches=drawn_batches(),
    expression=drawn_filters(),
    disk=st.booleans(),
    state=st.sampled_from(STATES),
)
def test_drawn_filters_answer_as_a_plain_dataset(
    batches: list[pa.RecordBatch], expression: pc.Expression, disk: bool, state: str
) -> None:
    """Every entry point: the plain dataset's rows, or an error of the same kind."""
    plain = ds.dataset(pa.Table.from_batches(batches, TABLE_SCHEMA))
    with tempfile.TemporaryDirectory() as directory:
        cache = _cache_in(directory if disk else None, batches)
        try:
            data = batchcorder.dataset(_ingested(cache, state))
            for name, scan in SCANS.items():
                expected = _outcome(lambda scan=scan: scan(plain, expression))
                got = _outcome(lambda scan=scan: scan(data, expression))
                assert got == expected, f"{name} of {expression}: {got}, plain: {expected}"
        finally:
            cache.close()
