"""Hypothesis strategies: tables in batches, and queries (:mod:`tests.differential.queries`) over them.

The table always has the columns of :data:`~tests.differential.queries.COLUMNS`,
with nulls in every column; what varies is the batches (none, empty ones,
slices of larger arrays, each with its own dictionary for ``cat``), the string
type and the values. Literals in queries are drawn from the same value
strategies, often from values of the table itself, so predicates select some
rows and not all.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from tests.differential.queries import (
    COLUMNS,
    NUMERIC,
    ORDERABLE,
    Aggregate,
    And,
    Between,
    BoolColumn,
    Compare,
    CompareColumns,
    GroupBy,
    Head,
    InList,
    IsNull,
    Not,
    Or,
    Predicate,
    Query,
    Relation,
    Select,
    SelfJoin,
    SortKey,
    StringMatch,
    Table,
    kind_of,
)

TIME_ZONE = "Europe/Paris"

#: Strings that recur, so equality, IN, grouping and joins find matches.
STRINGS = ["", "a", "ab", "abc", "B", "b", "é", "Ünïcödé", "日本語", "😀", "it's", "a b", "%_"]
#: The values of the dictionary column; each batch's dictionary holds some of
#: them, in its own order, and possibly values no row uses.
CATEGORIES = ["red", "green", "blue", "", "ünï", "日本"]
#: Pieces of LIKE patterns and of starts_with / contains arguments (no wildcards).
FRAGMENTS = ["", "a", "b", "ab", "é", "日", "😀", "it's", " ", "B"]

_FLOAT_SPECIALS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 0.5, 1.0, -1.0]
_DATE_MIN, _DATE_MAX = dt.date(1900, 1, 1), dt.date(2100, 12, 31)
_TS_MIN, _TS_MAX = dt.datetime(1900, 1, 1), dt.datetime(2100, 12, 31)

#: Non-null values of each kind.
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "i": st.one_of(
        st.integers(-20, 20),
        st.integers(-(2**63), 2**63 - 1),
    ),
    "k": st.integers(0, 4),
    # Finite values are bounded so that no float sum overflows, and the
    # tolerance of float sums stays meaningful (see compare.py).
    "f": st.one_of(st.sampled_from(_FLOAT_SPECIALS), st.floats(-1e6, 1e6)),
    "s": st.one_of(
        st.sampled_from(STRINGS),
        st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=6),
    ),
    "d": st.one_of(
        st.dates(dt.date(2020, 1, 1), dt.date(2020, 1, 10)), st.dates(_DATE_MIN, _DATE_MAX)
    ),
    "ts": st.one_of(
        st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1, 0, 10)),
        st.datetimes(_TS_MIN, _TS_MAX),
    ),
    "tz": st.datetimes(_TS_MIN, _TS_MAX),
    "b": st.booleans(),
    "cat": st.sampled_from(CATEGORIES),
}


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``values`` or, one time in eight, None (shrinking towards a value)."""
    return st.tuples(st.integers(0, 7), values).map(lambda pair: None if pair[0] == 7 else pair[1])


def schema(string_type: pa.DataType) -> pa.Schema:
    """The table's schema with ``s`` of ``string_type``."""
    return pa.schema(
        [
            ("i", pa.int64()),
            ("k", pa.int16()),
            ("f", pa.float64()),
            ("s", string_type),
            ("d", pa.date32()),
            ("ts", pa.timestamp("us")),
            ("tz", pa.timestamp("us", tz=TIME_ZONE)),
            ("b", pa.bool_()),
            ("cat", pa.dictionary(pa.int32(), pa.string())),
        ]
    )


@st.composite
def _dictionary_column(draw: st.DrawFn, values: list[str | None]) -> pa.Array:
    used = [value for value in dict.fromkeys(values) if value is not None]
    unused = [value for value in CATEGORIES if value not in used]
    extra = draw(st.lists(st.sampled_from(unused), unique=True)) if unused else []
    dictionary = draw(st.permutations(used + extra))
    position = {value: index for index, value in enumerate(dictionary)}
    indices = pa.array([None if v is None else position[v] for v in values], pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(dictionary, pa.string()))


@st.composite
def batch(draw: st.DrawFn, table_schema: pa.Schema) -> pa.RecordBatch:
    """One batch: 0 to 12 rows, sometimes a slice (non-zero offset) of a longer one."""
    rows = draw(st.integers(0, 12))
    before = draw(st.sampled_from([0, 0, 0, 1, 3]))
    total = before + rows
    arrays = []
    for field in table_schema:
        values = draw(st.lists(nullable(VALUES[field.name]), min_size=total, max_size=total))
        if field.name == "cat":
            arrays.append(draw(_dictionary_column(values)))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=table_schema).slice(before, rows)


@st.composite
def tables(draw: st.DrawFn) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    """A schema and 0 to 6 batches of it."""
    string_type = draw(st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]))
    table_schema = schema(string_type)
    batches = draw(st.lists(batch(table_schema), max_size=6))
    return table_schema, batches


# -- queries -------------------------------------------------------------------


def _column_values(batches: list[pa.RecordBatch], column: str) -> list[Any]:
    name = column.split("_", 1)[1] if column not in COLUMNS else column
    return [v for b in batches for v in b.column(name).to_pylist() if v is not None]


@st.composite
def literal(draw: st.DrawFn, column: str, batches: list[pa.RecordBatch]) -> Any:
    """A non-null literal for ``column`` (not ``tz``, which predicates compare only with
    itself): one of its values in the table, or any value of its kind."""
    present = _column_values(batches, column)
    name = column if column in COLUMNS else column.split("_", 1)[1]
    choices = [VALUES[name]]
    if present:
        choices.insert(0, st.sampled_from(present))
    value = draw(st.one_of(*choices))
    if isinstance(value, float) and not math.isfinite(value):
        # SQL has no portable literal for NaN or infinity.
        value = draw(st.sampled_from([0.0, 1.5, -2.25]))
    return value


def _like_pattern() -> st.SearchStrategy[str]:
    pieces = st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(["%", "_"])), max_size=4
    )
    return pieces.map("".join)


def _leaf(
    draw: st.DrawFn, shape: str, columns: list[str], batches: list[pa.RecordBatch]
) -> Predicate:
    """One predicate without and/or/not, of ``shape``."""

    def pick(*kinds: str) -> str:
        return draw(st.sampled_from([c for c in columns if kind_of(c) in kinds]))

    if shape == "compare":
        column = pick("int", "float", "string", "date", "timestamp", "dict", "bool")
        op = draw(st.sampled_from(["<", "<=", "=", "!=", ">", ">="]))
        return Compare(column, op, draw(literal(column, batches)))
    if shape == "range":
        # The same column twice: a lower and an upper bound.
        column = pick("int", "float", "string", "date", "timestamp")
        low = Compare(column, draw(st.sampled_from([">", ">="])), draw(literal(column, batches)))
        high = Compare(column, draw(st.sampled_from(["<", "<="])), draw(literal(column, batches)))
        return And((low, high))
    if shape == "between":
        column = pick("int", "float", "string", "date", "timestamp")
        return Between(column, draw(literal(column, batches)), draw(literal(column, batches)))
    if shape == "in":
        column = pick("int", "float", "string", "date", "dict")
        values = draw(st.lists(literal(column, batches), min_size=1, max_size=4))
        return InList(column, tuple(values))
    if shape == "null":
        return IsNull(draw(st.sampled_from(columns)), draw(st.booleans()))
    if shape == "string":
        how = draw(st.sampled_from(["starts_with", "contains", "like"]))
        text = draw(_like_pattern() if how == "like" else st.sampled_from(FRAGMENTS))
        return StringMatch(pick("string"), how, text)
    if shape == "bool":
        return BoolColumn(pick("bool"))
    # Two columns of one kind.
    kind = draw(st.sampled_from(["int", "float", "string", "date", "timestamp_tz"]))
    left, right = pick(kind), pick(kind)
    return CompareColumns(left, draw(st.sampled_from(["<", "=", "!=", ">="])), right)


@st.composite
def predicate(
    draw: st.DrawFn, columns: list[str], batches: list[pa.RecordBatch], depth: int = 2
) -> Predicate:
    """A predicate over ``columns``: comparisons, ranges, IN, IS NULL, string matches, and/or/not."""
    leaves = ["compare", "range", "between", "in", "null", "string", "bool", "columns"]
    shape = draw(st.sampled_from([*leaves, "and", "or", "not"] if depth > 0 else leaves))
    if shape in ("and", "or"):
        items = tuple(
            draw(st.lists(predicate(columns, batches, depth - 1), min_size=2, max_size=3))
        )
        return And(items) if shape == "and" else Or(items)
    if shape == "not":
        return Not(draw(predicate(columns, batches, depth - 1)))
    return _leaf(draw, shape, columns, batches)


@st.composite
def relation(draw: st.DrawFn, batches: list[pa.RecordBatch]) -> Relation:
    """The table (mostly), its first rows, or a self-join on a key of one kind."""
    shape = draw(st.sampled_from(["table", "table", "head", "join"]))
    if shape == "table":
        return Table()
    if shape == "head":
        # Fewer rows than the table has, mostly: a head that cuts.
        return Head(draw(st.integers(0, sum(batch.num_rows for batch in batches) + 1)))
    key = draw(st.sampled_from(["k", "k", "i", "s", "cat", "d", "b", "f"]))
    columns = list(COLUMNS)
    wheres = [
        draw(st.none() | predicate(columns, batches, depth=1)),
        draw(st.none() | predicate(columns, batches, depth=1)),
    ]
    how = draw(st.sampled_from(["inner", "left"]))
    return SelfJoin(how, key, key, wheres[0], wheres[1])


def _sort_keys(draw: st.DrawFn, count: int) -> tuple[SortKey, ...]:
    return tuple(SortKey(index, draw(st.booleans()), draw(st.booleans())) for index in range(count))


def _aggregate(draw: st.DrawFn, columns: list[str]) -> Aggregate:
    function = draw(
        st.sampled_from(["count_star", "count", "count_distinct", "sum", "min", "max", "avg"])
    )
    if function == "count_star":
        return Aggregate("count_star")
    if function in ("sum", "avg"):
        eligible = [c for c in columns if kind_of(c) in NUMERIC]
    elif function in ("min", "max"):
        eligible = [c for c in columns if kind_of(c) in ORDERABLE]
    else:
        eligible = columns
    return Aggregate(function, draw(st.sampled_from(eligible)))


@st.composite
def queries(draw: st.DrawFn, batches: list[pa.RecordBatch]) -> Query:
    """A query over the table of ``batches``."""
    source = draw(relation(batches))
    columns = source.columns()
    where = draw(st.none() | predicate(columns, batches))
    limit = draw(st.none() | st.integers(0, 25))
    if draw(st.booleans()):
        keys = tuple(draw(st.lists(st.sampled_from(columns), max_size=2, unique=True)))
        count = draw(st.integers(1, 4))
        output: Select | GroupBy = GroupBy(
            keys,
            tuple(_aggregate(draw, columns) for _ in range(count)),
            _sort_keys(draw, len(keys)) if draw(st.booleans()) else (),
            limit,
        )
    else:
        if isinstance(source, SelfJoin):
            # A join can be large: its rows are always sorted and limited.
            limit = limit if limit is not None else 20
        star = draw(st.integers(0, 5)) == 0
        selected = (
            None
            if star
            else tuple(draw(st.lists(st.sampled_from(columns), min_size=1, max_size=5)))
        )
        width = len(columns) if selected is None else len(selected)
        ordered = isinstance(source, SelfJoin) or draw(st.booleans())
        if selected is None and ordered:
            # SELECT * keeps the columns' own names: nothing for ORDER BY c0 to name.
            selected = tuple(columns)
        output = Select(selected, _sort_keys(draw, width) if ordered else (), limit)
    return Query(source, where, output)
