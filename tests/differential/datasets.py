"""pyarrow's own dataset API over a cache's datasets, against the same calls over a plain dataset.

A user can skip the engines and call a cache's dataset directly:
``to_table``, ``count_rows``, ``head``, ``to_batches``, ``scanner(...)`` and
its ``to_table``/``to_reader``/``count_rows``/``head``, with a filter and a
column selection. This module generates tables with columns of every
numeric, decimal, temporal and dictionary type, filters for them (``is_in``
with value sets of other types, comparisons with scalars of other types,
casts of strings to integers and checked arithmetic, which raise, and/or/not
of those), and the calls; :func:`first_mismatch` runs the calls on every
dataset of :data:`DATASETS` over caches in every storage mode and state, and
compares each answer, or the kind of error, with the same call on
``pyarrow.dataset.InMemoryDataset`` of the table's batches.

Values come from one pool of numbers (:data:`SEEDS`), converted to each
type the way pyarrow converts (``cast(..., safe=False)``), so a column and a
value set of another type often hold the same number seen through two types
(``float32(0.1)`` and ``0.1``; ``decimal(5, 2)`` ``1.23`` and ``1.225``), the
cases where a filter's set lookup and batch statistics must agree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from hypothesis import strategies as st

import batchcorder
from batchcorder.adapters import datafusion as bc_datafusion
from batchcorder.adapters import duckdb as bc_duckdb

#: The numbers every column and literal is made of.
SEEDS: list[int | float] = [
    0, 1, -1, 2, 7, 100, 127, 128, -129, 255, 256, 32767, 65535, 2**31, 2**53 + 1, 2**63 - 1,
    0.1, 0.2, 0.5, 1.225, 1.23, 1.5, -2.5, 1e10, 1e-7, math.nan, math.inf, -0.0,
]  # fmt: skip

#: Column types of the generated tables: every numeric, decimal, temporal and
#: dictionary type (a few of them per table).
COLUMN_TYPES: dict[str, pa.DataType] = {
    "i8": pa.int8(),
    "i16": pa.int16(),
    "i32": pa.int32(),
    "i64": pa.int64(),
    "u8": pa.uint8(),
    "u32": pa.uint32(),
    "u64": pa.uint64(),
    "f16": pa.float16(),
    "f32": pa.float32(),
    "f64": pa.float64(),
    "d52": pa.decimal128(5, 2),
    "d3810": pa.decimal128(38, 10),
    "d403": pa.decimal256(40, 3),
    "date32": pa.date32(),
    "date64": pa.date64(),
    "ts_s": pa.timestamp("s"),
    "ts_ms_utc": pa.timestamp("ms", tz="UTC"),
    "ts_ns": pa.timestamp("ns"),
    "time32": pa.time32("ms"),
    "time64": pa.time64("us"),
    "dur": pa.duration("us"),
    "dict_str": pa.dictionary(pa.int8(), pa.string()),
    "dict_i64": pa.dictionary(pa.int32(), pa.int64()),
}

#: Types of value sets and of scalars compared with a column: of other types, mostly.
VALUE_TYPES: list[pa.DataType] = [
    pa.int64(),
    pa.int32(),
    pa.uint8(),
    pa.float64(),
    pa.float32(),
    pa.decimal128(5, 2),
    pa.decimal128(6, 3),
    pa.string(),
    pa.date32(),
    pa.timestamp("us"),
    pa.timestamp("ms", tz="UTC"),
    pa.bool_(),
]

#: The always-present columns: ``x`` (small integers, sorted by batch, so
#: statistics skip batches), ``s`` (strings, mostly numbers), ``pad`` (never used).
FIXED: dict[str, pa.DataType] = {"x": pa.int64(), "s": pa.string(), "pad": pa.string()}
STRINGS = ["0", "1", "-2", "42", "0.1", "1.23", "abc", ""]


def _base_type(data_type: pa.DataType) -> pa.DataType:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


@functools.cache
def _converted(seed: int | float, type_text: str) -> tuple[Any, ...]:
    """``seed`` as a value of the type named ``type_text`` (empty if it has none)."""
    data_type = _TYPES_BY_TEXT[type_text]
    target = _base_type(data_type)
    if pa.types.is_string(target):
        return (str(seed),)
    if pa.types.is_boolean(target):
        return (bool(seed),) if not (isinstance(seed, float) and math.isnan(seed)) else ()
    temporal = pa.types.is_temporal(target)
    if temporal and isinstance(seed, float):
        return ()
    if temporal:
        # date32 and time32 are 32-bit underneath: only a 32-bit integer casts to them.
        narrow = pa.types.is_date32(target) or pa.types.is_time32(target)
        if narrow and not -(2**31) <= seed < 2**31:
            return ()
        source = pa.array([seed], pa.int32() if narrow else pa.int64())
    elif isinstance(seed, int) and not pa.types.is_decimal(target):
        source = pa.array([seed], pa.uint64() if seed >= 2**63 else pa.int64())
    else:
        source = pa.array([float(seed)], pa.float64())
    try:
        value = source.cast(target, safe=False)[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError, ValueError):
        return ()
    return () if value is None else (value,)


_TYPES_BY_TEXT: dict[str, pa.DataType] = {
    str(t): t for t in [*COLUMN_TYPES.values(), *VALUE_TYPES, *FIXED.values()]
}


def values_of(data_type: pa.DataType) -> list[Any]:
    """Every value of :data:`SEEDS` as ``data_type`` has it, without repeats."""
    found: list[Any] = []
    for seed in SEEDS:
        for value in _converted(seed, str(data_type)):
            if not any(_same(value, other) for other in found):
                found.append(value)
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b and str(a) == str(b)


def _array(values: list[Any], data_type: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(data_type):
        return pa.array(values, data_type.value_type).dictionary_encode().cast(data_type)
    return pa.array(values, data_type)


#: The column types drawn, those whose values other types see inexactly (binary
#: floats, decimals) more often than the rest.
_DRAWN_TYPES = [*sorted(COLUMN_TYPES), "f16", "f32", "f32", "d52", "d52", "d403"]

#: The seeds each typed column was made of, by column name.
Seeds = dict[str, list[Any]]


@st.composite
def dataset_tables(draw: st.DrawFn) -> tuple[pa.Schema, list[pa.RecordBatch], Seeds]:
    """A schema of 1 to 3 typed columns and the fixed ones, 0 to 5 batches of it, and the
    seeds each typed column's values were converted from.

    ``x`` grows from batch to batch, so a bound on it skips whole batches.
    """
    names = draw(st.lists(st.sampled_from(_DRAWN_TYPES), min_size=1, max_size=3, unique=True))
    fields = [(name, COLUMN_TYPES[name]) for name in names] + list(FIXED.items())
    schema = pa.schema(fields)
    sizes = draw(st.lists(st.integers(0, 6), min_size=1, max_size=5))
    seeds: Seeds = {name: [] for name in names}
    batches = []
    for index, rows in enumerate(sizes):
        arrays = []
        for name, data_type in fields:
            if name == "x":
                values = [index * 10 + row for row in range(rows)]
            elif name in ("s", "pad"):
                values = draw(
                    st.lists(st.none() | st.sampled_from(STRINGS), min_size=rows, max_size=rows)
                )
            else:
                # Each batch draws from a palette of its own, so values cluster by
                # batch and statistics are tight enough to skip batches.
                palette = draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=2))
                drawn = draw(st.lists(nullable(palette), min_size=rows, max_size=rows))
                seeds[name] += [seed for seed in drawn if seed is not None]
                values = [_value(seed, data_type) for seed in drawn]
            arrays.append(_array(values, data_type))
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return schema, batches, seeds


def nullable(palette: list[Any]) -> st.SearchStrategy[Any]:
    """A seed of ``palette``, or (one time in six) None."""
    return st.tuples(st.integers(0, 5), st.sampled_from(palette)).map(
        lambda pair: None if pair[0] == 5 else pair[1]
    )


def _value(seed: Any, data_type: pa.DataType) -> Any:
    """``seed`` as a value of ``data_type``, or None where it has none."""
    if seed is None:
        return None
    converted = _converted(seed, str(data_type))
    return converted[0] if converted else None


# -- filters -----------------------------------------------------------------------


def _literal_type(draw: st.DrawFn, column_type: pa.DataType) -> pa.DataType:
    """Half the time the type a Python literal becomes (``float64`` next to a float or
    decimal column, ``int64`` next to an integer one), else the column's own or any type."""
    base = _base_type(column_type)
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.sampled_from(VALUE_TYPES))
    if choice == 1:
        return base
    if pa.types.is_floating(base) or pa.types.is_decimal(base):
        return pa.float64()
    if pa.types.is_integer(base):
        return pa.int64()
    return base


def _seed(draw: st.DrawFn, used: list[Any]) -> Any:
    """Mostly a seed the column was made of, so the literal is one of its values seen
    through another type."""
    if used and draw(st.integers(0, 3)):
        return draw(st.sampled_from(used))
    return draw(st.sampled_from(SEEDS))


@st.composite
def value_set(draw: st.DrawFn, column_type: pa.DataType, used: list[Any]) -> pa.Array:
    """Values for ``is_in``: mostly of another type than the column's, sometimes with null."""
    data_type = _literal_type(draw, column_type)
    values = [_value(_seed(draw, used), data_type) for _ in range(draw(st.integers(1, 3)))]
    values = [value for value in values if value is not None]
    if draw(st.integers(0, 4)) == 0:
        values.append(None)
    return pa.array(values, data_type)


@st.composite
def scalar(draw: st.DrawFn, column_type: pa.DataType, used: list[Any]) -> pa.Scalar:
    """A scalar to compare a column with: of its type or another."""
    data_type = _literal_type(draw, column_type)
    return pa.scalar(_value(_seed(draw, used), data_type), data_type)


_COMPARISONS: dict[str, Callable[[Any, Any], pc.Expression]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

#: Functions that raise on some inputs: checked arithmetic and division.
_RAISING = ["add_checked", "subtract_checked", "multiply_checked", "divide", "divide_checked"]


@st.composite
def raising(draw: st.DrawFn) -> pc.Expression:
    """A filter that raises on some rows: a cast of strings to an integer, or checked
    arithmetic on ``x`` that overflows or divides by zero."""
    if draw(st.booleans()):
        target = draw(st.sampled_from([pa.int64(), pa.int8(), pa.float64(), pa.decimal128(5, 2)]))
        return pc.field("s").cast(target) > pa.scalar(0, pa.int64())
    function = draw(st.sampled_from(_RAISING))
    operand = draw(st.sampled_from([0, 1, 2**62, 2**63 - 1, -(2**63)]))
    computed = getattr(pc, function)(pc.field("x"), pa.scalar(operand, pa.int64()))
    return computed > pa.scalar(0, pa.int64())


@st.composite
def leaf_filter(draw: st.DrawFn, schema: pa.Schema, seeds: Seeds) -> pc.Expression:
    """One filter without and/or/not."""
    typed = [f for f in schema if f.name not in FIXED]
    shape = draw(st.sampled_from(["isin", "isin", "isin", "compare", "x", "raising", "null"]))
    if shape == "x":
        op = draw(st.sampled_from(sorted(_COMPARISONS)))
        bound = draw(st.sampled_from([-1, 0, 3, 10, 25, 100]))
        return _COMPARISONS[op](pc.field("x"), pa.scalar(bound, pa.int64()))
    if shape == "raising":
        return draw(raising())
    field = draw(st.sampled_from(typed))
    if shape == "isin":
        return pc.field(field.name).isin(draw(value_set(field.type, seeds[field.name])))
    if shape == "null":
        return pc.field(field.name).is_null(nan_is_null=draw(st.booleans()))
    op = draw(st.sampled_from(sorted(_COMPARISONS)))
    return _COMPARISONS[op](pc.field(field.name), draw(scalar(field.type, seeds[field.name])))


@st.composite
def dataset_filter(
    draw: st.DrawFn, schema: pa.Schema, seeds: Seeds, depth: int = 2
) -> pc.Expression:
    """A filter: leaves, and/or/not of them (a bound on ``x`` and'ed with a raising
    function is one: statistics skip batches the raising part would fail on)."""
    shape = draw(
        st.sampled_from(["leaf", "leaf", "leaf", "and", "and", "or", "not"] if depth else ["leaf"])
    )
    if shape == "leaf":
        return draw(leaf_filter(schema, seeds))
    if shape == "not":
        return ~draw(dataset_filter(schema, seeds, depth - 1))
    left = draw(dataset_filter(schema, seeds, depth - 1))
    right = draw(dataset_filter(schema, seeds, depth - 1))
    return left & right if shape == "and" else left | right


# -- calls -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of pyarrow's dataset API: ``method`` with a filter, columns and a row count."""

    method: str
    filter: pc.Expression | None
    columns: tuple[str, ...] | None
    rows: int = 0

    def __call__(self, dataset: ds.Dataset) -> pa.Table:
        columns = None if self.columns is None else list(self.columns)
        keywords: dict[str, Any] = {"filter": self.filter, "columns": columns}
        if self.method == "to_table":
            return dataset.to_table(**keywords)
        if self.method == "to_batches":
            scanned = dataset.scanner(**keywords)
            return pa.Table.from_batches(dataset.to_batches(**keywords), scanned.projected_schema)
        if self.method == "head":
            return dataset.head(self.rows, **keywords)
        if self.method == "count_rows":
            return _count(dataset.count_rows(filter=self.filter))
        scanner = dataset.scanner(**keywords)
        if self.method == "scanner.to_table":
            return scanner.to_table()
        if self.method == "scanner.to_reader":
            return scanner.to_reader().read_all()
        if self.method == "scanner.head":
            return scanner.head(self.rows)
        return _count(scanner.count_rows())

    def describe(self) -> str:
        return f"{self.method}(filter={self.filter}, columns={self.columns}, rows={self.rows})"


def _count(rows: int) -> pa.Table:
    return pa.table({"count_rows": [rows]})


METHODS = [
    "to_table",
    "to_batches",
    "head",
    "count_rows",
    "scanner.to_table",
    "scanner.to_reader",
    "scanner.head",
    "scanner.count_rows",
]


@st.composite
def calls(draw: st.DrawFn, schema: pa.Schema, seeds: Seeds) -> Call:
    """A call with a filter (mostly), some columns (or all) and, for ``head``, a row count."""
    names = [name for name in schema.names if name != "pad"]
    columns = draw(
        st.none() | st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)
    )
    return Call(
        draw(st.sampled_from(METHODS)),
        draw(dataset_filter(schema, seeds)) if draw(st.integers(0, 5)) else None,
        None if columns is None else tuple(columns),
        draw(st.integers(0, 12)),
    )


#: Datasets of a cache a user can call pyarrow's API on.
DATASETS: dict[str, Callable[[Any], ds.Dataset]] = {
    "batchcorder.dataset": batchcorder.dataset,
    "adapters.duckdb.dataset": bc_duckdb.dataset,
    "adapters.datafusion.dataset": bc_datafusion.dataset,
}


def plain_dataset(table: pa.Table) -> ds.InMemoryDataset:
    """The reference: pyarrow's own dataset of the table's batches."""
    return ds.InMemoryDataset(table.to_batches(), schema=table.schema)
