"""Hypothesis strategies: tables in batches, and queries (:mod:`tests.differential.queries`) over them.

The table ``t`` always has the columns of :data:`~tests.differential.queries.COLUMNS`,
with nulls in every column but the unique ``id``; the second table ``u`` the
columns of :data:`~tests.differential.queries.U_COLUMNS`. What varies is the
batches (none, empty ones, slices of larger arrays, each with its own
dictionary for ``cat``), the string type and the values. A query uses a few
columns, so most columns of ``t`` are unused by it. Literals in queries are
drawn from the same value strategies, often from values of the table itself,
so predicates select some rows and not all.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from tests.differential.queries import (
    CASTS,
    COLUMNS,
    NUMERIC,
    ORDERABLE,
    STRING_FUNCTIONS,
    U_COLUMNS,
    Aggregate,
    And,
    Arithmetic,
    Between,
    BoolColumn,
    Cast,
    Compare,
    CompareColumns,
    CompareExpr,
    Derived,
    Expr,
    GroupBy,
    Head,
    InList,
    InSubquery,
    IsNull,
    JoinOther,
    Not,
    Or,
    Predicate,
    Query,
    Relation,
    RepeatedCte,
    Select,
    SelfJoin,
    SortKey,
    StringFunction,
    StringMatch,
    Table,
    Tail,
    UnionAll,
    Window,
    base_column,
    kind_of,
)

TIME_ZONE = "Europe/Paris"

#: Strings that recur, so equality, IN, grouping and joins find matches.
#: Some read as integers, so casts to an integer sometimes succeed.
STRINGS = ["", "a", "ab", "abc", "B", "b", "é", "Ünïcödé", "日本語", "😀", "it's", "a b", "%_"]
NUMBERS = ["0", "1", "-2", "42", "99999"]
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
    "id": st.integers(0, 100),
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
        st.sampled_from(NUMBERS),
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
    "l": st.lists(st.none() | st.integers(0, 3), max_size=3),
    "uk": st.integers(0, 5),
    "ui": st.integers(-20, 20),
    "us": st.one_of(st.sampled_from(STRINGS), st.sampled_from(NUMBERS)),
    "uf": st.one_of(st.sampled_from(_FLOAT_SPECIALS), st.floats(-1e3, 1e3)),
}

#: The second table's schema.
U_SCHEMA = pa.schema(
    [("uk", pa.int16()), ("ui", pa.int64()), ("us", pa.string()), ("uf", pa.float64())]
)


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``values`` or, one time in eight, None (shrinking towards a value)."""
    return st.tuples(st.integers(0, 7), values).map(lambda pair: None if pair[0] == 7 else pair[1])


def schema(string_type: pa.DataType) -> pa.Schema:
    """The table's schema with ``s`` of ``string_type``."""
    return pa.schema(
        [
            ("id", pa.int64()),
            ("i", pa.int64()),
            ("k", pa.int16()),
            ("f", pa.float64()),
            ("s", string_type),
            ("d", pa.date32()),
            ("ts", pa.timestamp("us")),
            ("tz", pa.timestamp("us", tz=TIME_ZONE)),
            ("b", pa.bool_()),
            ("cat", pa.dictionary(pa.int32(), pa.string())),
            ("l", pa.list_(pa.int64())),
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
def batch(draw: st.DrawFn, table_schema: pa.Schema, max_rows: int = 12) -> pa.RecordBatch:
    """One batch: 0 to ``max_rows`` rows, sometimes a slice (non-zero offset) of a longer one."""
    rows = draw(st.integers(0, max_rows))
    before = draw(st.sampled_from([0, 0, 0, 1, 3]))
    total = before + rows
    arrays = []
    for field in table_schema:
        values = draw(st.lists(nullable(VALUES[field.name]), min_size=total, max_size=total))
        if field.name == "id":
            values = [0] * total  # numbered in tables()
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
    # No batch at all one time in ten; else 1 to 6.
    batches = (
        []
        if draw(st.integers(0, 9)) == 0
        else draw(st.lists(batch(table_schema), min_size=1, max_size=6))
    )
    # id: unique, in an order of its own (not the row order).
    ids = iter(draw(st.permutations(range(sum(b.num_rows for b in batches)))))
    numbered = [
        b.set_column(0, "id", pa.array([next(ids) for _ in range(b.num_rows)], pa.int64()))
        for b in batches
    ]
    return table_schema, numbered


@st.composite
def other_tables(draw: st.DrawFn) -> list[pa.RecordBatch]:
    """Batches of the second table, ``u``: 0 to 3 batches of 0 to 6 rows."""
    return draw(st.lists(batch(U_SCHEMA, max_rows=6), max_size=3))


# -- queries -------------------------------------------------------------------

#: The batches of each table of an example, by name: ``t`` and ``u``.
Data = dict[str, list[pa.RecordBatch]]


def _column_values(data: Data, column: str) -> list[Any]:
    name = base_column(column)
    if name not in COLUMNS and name not in U_COLUMNS:
        return []  # the computed column
    batches = data["u"] if name in U_COLUMNS else data["t"]
    return [v for b in batches for v in b.column(name).to_pylist() if v is not None]


#: Literals for each kind of computed value.
KIND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-20, 100),
    "float": st.sampled_from([0.0, 0.5, 1.5, -2.25, 99999.0]),
    "string": st.one_of(st.sampled_from(STRINGS), st.sampled_from(NUMBERS)),
}


@st.composite
def literal(draw: st.DrawFn, column: str, data: Data) -> Any:
    """A non-null literal for ``column`` (not ``tz``, which predicates compare only with
    itself): one of its values in the tables, or any value of its kind."""
    present = _column_values(data, column)
    name = base_column(column)
    choices = [VALUES.get(name, KIND_VALUES["int"])]
    if present:
        choices.insert(0, st.sampled_from(present))
        ordered = [v for v in present if not (isinstance(v, float) and math.isnan(v))]
        if ordered and kind_of(column) in ("int", "float", "string", "date", "timestamp"):
            # The extremes: a comparison with one excludes every batch, or all but one, by
            # their statistics (so what the rest of a filter would raise must still raise).
            choices.insert(0, st.sampled_from([min(ordered), max(ordered)]))
    value = draw(st.one_of(*choices))
    if isinstance(value, float) and not math.isfinite(value):
        # SQL has no portable literal for NaN or infinity.
        value = draw(st.sampled_from([0.0, 1.5, -2.25]))
    if isinstance(value, list):
        # Of the list column: a tuple keeps the query hashable; no null items in a literal.
        value = tuple(item for item in value if item is not None)
    return value


def _like_pattern() -> st.SearchStrategy[str]:
    pieces = st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(["%", "_"])), max_size=4
    )
    return pieces.map("".join)


def _pick(draw: st.DrawFn, columns: list[str], *kinds: str) -> str:
    """A column of one of ``kinds``; float columns three times as often as others (NaN,
    infinities and -0.0 are where engines and pyarrow order and compare differently)."""
    eligible = [c for c in columns if kind_of(c) in kinds]
    eligible += [c for c in eligible if kind_of(c) == "float"] * 2
    return draw(st.sampled_from(eligible))


@st.composite
def expression(draw: st.DrawFn, columns: list[str], integer: bool = False) -> Expr:
    """A cast (which may fail), a string function or integer arithmetic (which may overflow
    or divide by zero) of a column; with ``integer``, one whose values are integers."""
    shape = draw(st.sampled_from(["cast", "string", "arithmetic"]))
    if shape == "cast":
        column = _pick(draw, columns, "int", "float", "string", "dict", "bool", "date")
        targets = [t for t in CASTS if CASTS[t][2] == "int"] if integer else list(CASTS)
        return Cast(column, draw(st.sampled_from(targets)))
    if shape == "string":
        functions = ["length"] if integer else list(STRING_FUNCTIONS)
        return StringFunction(draw(st.sampled_from(functions)), _pick(draw, columns, "string"))
    op = draw(st.sampled_from(["+", "-", "*"] if integer else ["+", "-", "*", "/"]))
    value = draw(st.sampled_from([0, 1, -1, 7, 1000, 2**40, 2**62]))
    return Arithmetic(_pick(draw, columns, "int"), op, value)


@st.composite
def window(draw: st.DrawFn, columns: list[str]) -> Window:
    """A window function of a column over a partition of the rows."""
    function = draw(st.sampled_from(["sum", "count", "rank", "running_sum", "row_number"]))
    if function in ("sum", "running_sum"):
        column = _pick(draw, columns, *NUMERIC)
    elif function == "rank":
        column = _pick(draw, columns, "int", "float", "string", "date", "timestamp")
    else:
        column = draw(st.sampled_from(columns))
    partition = _pick(draw, columns, "int", "float", "string", "date", "bool", "dict")
    return Window(function, column, partition)


def _comparison(draw: st.DrawFn, shape: str, columns: list[str], data: Data) -> Predicate:
    """A comparison of a column with literals, of ``shape``."""
    if shape == "compare":
        column = _pick(draw, columns, "int", "float", "string", "date", "timestamp", "dict", "bool")
        op = draw(st.sampled_from(["<", "<=", "=", "!=", ">", ">="]))
        return Compare(column, op, draw(literal(column, data)))
    if shape == "list":
        # Lists compare in SQL; Polars raises (so a filter skipping batches must too).
        column = _pick(draw, columns, "list")
        return Compare(column, draw(st.sampled_from(["<", "=", ">"])), draw(literal(column, data)))
    if shape == "in":
        column = _pick(draw, columns, "int", "float", "string", "date", "dict")
        values = draw(st.lists(literal(column, data), min_size=1, max_size=4))
        return InList(column, tuple(values))
    column = _pick(draw, columns, "int", "float", "string", "date", "timestamp")
    if shape == "between":
        return Between(column, draw(literal(column, data)), draw(literal(column, data)))
    # A range: the same column twice, a lower and an upper bound.
    low = Compare(column, draw(st.sampled_from([">", ">="])), draw(literal(column, data)))
    high = Compare(column, draw(st.sampled_from(["<", "<="])), draw(literal(column, data)))
    return And((low, high))


def _leaf(draw: st.DrawFn, shape: str, columns: list[str], data: Data) -> Predicate:
    """One predicate without and/or/not, of ``shape``."""
    if shape in ("compare", "list", "in", "between", "range"):
        return _comparison(draw, shape, columns, data)
    if shape == "null":
        return IsNull(draw(st.sampled_from(columns)), draw(st.booleans()))
    if shape == "string":
        how = draw(st.sampled_from(["starts_with", "contains", "like"]))
        text = draw(_like_pattern() if how == "like" else st.sampled_from(FRAGMENTS))
        return StringMatch(_pick(draw, columns, "string"), how, text)
    if shape == "bool":
        return BoolColumn(_pick(draw, columns, "bool"))
    if shape == "expression":
        computed = draw(expression(columns))
        op = draw(st.sampled_from(["<", "=", "!=", ">"]))
        return CompareExpr(computed, op, draw(KIND_VALUES[computed.kind]))
    # Two columns of one kind.
    kinds = {kind_of(c) for c in columns}
    pairs = [k for k in ("int", "float", "string", "date", "timestamp_tz") if k in kinds]
    kind = draw(st.sampled_from(pairs))
    left, right = _pick(draw, columns, kind), _pick(draw, columns, kind)
    return CompareColumns(left, draw(st.sampled_from(["<", "=", "!=", ">="])), right)


@st.composite
def predicate(draw: st.DrawFn, columns: list[str], data: Data, depth: int = 2) -> Predicate:
    """A predicate over ``columns``: comparisons, ranges, IN, IS NULL, string matches,
    comparisons of computed values, and/or/not."""
    leaves = ["compare", "range", "between", "in", "null", "string", "columns", "expression"]
    if any(kind_of(c) == "bool" for c in columns):
        leaves.append("bool")
    if any(kind_of(c) == "list" for c in columns):
        leaves.append("list")
    # Conjunctions often: a part batch statistics can decide next to a part they cannot
    # (which may raise, on the table and so on the cache).
    connectives = ["and"] * (len(leaves) // 2) + ["or", "not"]
    shape = draw(st.sampled_from([*leaves, *connectives] if depth > 0 else leaves))
    if shape in ("and", "or"):
        items = tuple(draw(st.lists(predicate(columns, data, depth - 1), min_size=2, max_size=3)))
        return And(items) if shape == "and" else Or(items)
    if shape == "not":
        return Not(draw(predicate(columns, data, depth - 1)))
    return _leaf(draw, shape, columns, data)


def _side(draw: st.DrawFn, columns: list[str], data: Data) -> Predicate | None:
    return draw(st.none() | predicate(columns, data, depth=1))


#: Join keys of ``t`` and ``u`` (the last pair of two integer types).
_OTHER_KEYS = [("k", "uk"), ("k", "uk"), ("i", "ui"), ("s", "us"), ("f", "uf"), ("k", "ui")]


@st.composite
def relation(draw: st.DrawFn, data: Data) -> Relation:
    """The table (mostly), a cut of it, it with a computed column, or a combination."""
    shape = draw(
        st.sampled_from(
            ["table"] * 6
            + ["head", "slice", "tail", "derived", "union", "cte", "in", "join", "self-join"]
        )
    )
    rows = sum(batch.num_rows for batch in data["t"])
    columns = list(COLUMNS)
    if shape == "table":
        return Table()
    if shape == "head":
        # Fewer rows than the table has, mostly: a head that cuts.
        return Head(draw(st.integers(0, rows + 1)))
    if shape == "slice":
        return Head(draw(st.integers(0, rows + 1)), draw(st.integers(1, rows + 1)))
    if shape == "tail":
        return Tail(draw(st.integers(0, rows + 1)))
    if shape == "derived":
        return Derived(draw(expression(columns, integer=True)))
    if shape == "union":
        return UnionAll(_side(draw, columns, data), _side(draw, columns, data))
    if shape == "cte":
        key = draw(st.sampled_from(["k", "cat", "b", "s", "d"]))
        return RepeatedCte(_side(draw, columns, data), key)
    if shape in ("in", "join"):
        column, other = draw(st.sampled_from(_OTHER_KEYS))
        other_where = _side(draw, list(U_COLUMNS), data)
        if shape == "in":
            return InSubquery(column, other, other_where, draw(st.booleans()))
        return JoinOther(draw(st.sampled_from(["inner", "left"])), column, other, other_where)
    key = draw(st.sampled_from(["k", "k", "i", "s", "cat", "d", "b", "f"]))
    how = draw(st.sampled_from(["inner", "left"]))
    return SelfJoin(how, key, key, _side(draw, columns, data), _side(draw, columns, data))


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


def _group_by(draw: st.DrawFn, columns: list[str], limit: int | None) -> GroupBy:
    keys = tuple(draw(st.lists(st.sampled_from(columns), max_size=2, unique=True)))
    count = draw(st.integers(1, 4))
    return GroupBy(
        keys,
        tuple(_aggregate(draw, columns) for _ in range(count)),
        _sort_keys(draw, len(keys)) if draw(st.booleans()) else (),
        limit,
    )


def _windows(draw: st.DrawFn, columns: list[str], limit: int | None) -> Select:
    """``id``, maybe a column, and window functions; sorted (if at all) by the unique ``id``."""
    items: list[str | Expr] = ["id", *draw(st.lists(st.sampled_from(columns), max_size=1))]
    items += draw(st.lists(window(columns), min_size=1, max_size=2))
    order = (SortKey(0, draw(st.booleans()), False),) if draw(st.booleans()) else ()
    return Select(tuple(items), order, limit)


def _select(draw: st.DrawFn, source: Relation, limit: int | None) -> Select:
    columns = source.columns()
    if isinstance(source, (SelfJoin, JoinOther)):
        # A join can be large: its rows are always sorted and limited.
        limit = limit if limit is not None else 20
    star = draw(st.integers(0, 5)) == 0
    item = st.sampled_from(columns) | expression(columns)
    items = None if star else tuple(draw(st.lists(item, min_size=1, max_size=5)))
    width = len(columns) if items is None else len(items)
    ordered = isinstance(source, (SelfJoin, JoinOther)) or draw(st.booleans())
    if items is None and ordered:
        # SELECT * keeps the columns' own names: nothing for ORDER BY c0 to name.
        items = tuple(columns)
    distinct = draw(st.integers(0, 3)) == 0
    return Select(items, _sort_keys(draw, width) if ordered else (), limit, distinct)


@st.composite
def queries(draw: st.DrawFn, data: Data) -> Query:
    """A query over the tables of ``data``."""
    source = draw(relation(data))
    columns = source.columns()
    where = draw(st.none() | predicate(columns, data))
    limit = draw(st.none() | st.integers(0, 25))
    outputs = ["group", "select", "select", "window"] if source.unique_id else ["group", "select"]
    shape = draw(st.sampled_from(outputs))
    if shape == "group":
        output: Select | GroupBy = _group_by(draw, columns, limit)
    elif shape == "window":
        output = _windows(draw, columns, limit)
    else:
        output = _select(draw, source, limit)
    return Query(source, where, output)
