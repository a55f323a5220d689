"""A small query AST that renders to SQL (DuckDB, DataFusion, Polars SQL) and to a Polars LazyFrame.

A :class:`Query` reads a relation (the table ``t``; a slice of it; its last
rows; it with a computed column; a self-join; a join with the second table
``u``; ``t`` filtered by ``IN (subquery)`` over ``u``; a ``UNION ALL`` of two
filters of it; a CTE read twice), filters it, and either projects columns and
expressions (casts that can fail, string functions, checked arithmetic,
window functions), optionally ``DISTINCT``, sorted and limited, or groups and
aggregates. Every node renders itself to each SQL
dialect and to Polars expressions, so one generated query runs on every
engine path. Each comparison is an engine against the same engine over the
plain table, so the renderings need not agree across engines; where they do
not (``count(DISTINCT)`` and Polars' ``n_unique`` over nulls, ``sum`` of no
rows, ...), nothing is compared across them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl

Dialect = Literal["duckdb", "datafusion", "polars"]


class Unrenderable(NotImplementedError):
    """A query has no rendering in a dialect (a Polars-only method such as ``tail``)."""


#: Kind of each column of the generated table; a join relation has every
#: column twice, as ``a_<name>`` and ``b_<name>``.
COLUMNS: dict[str, str] = {
    "id": "int",  # int64, unique: a total order for windows and ORDER BY
    "i": "int",  # int64, small values and, rarely, extremes
    "k": "int",  # int16, a handful of values: a group and join key
    "f": "float",  # float64 with NaN, infinities and -0.0
    "s": "string",  # string, large_string or string_view; unicode and ''
    "d": "date",  # date32
    "ts": "timestamp",  # timestamp[us]
    "tz": "timestamp_tz",  # timestamp[us, tz=Europe/Paris]
    "b": "bool",
    "cat": "dict",  # dictionary<int32, string>, a dictionary of its own per batch
    "l": "list",  # list<int64>
}

#: Kind of each column of the second table, ``u`` (names apart from ``t``'s).
U_COLUMNS: dict[str, str] = {"uk": "int", "ui": "int", "us": "string", "uf": "float"}

#: The column a relation with a computed column adds (always an integer).
DERIVED = "w"

ORDERABLE = ("int", "float", "string", "date", "timestamp", "timestamp_tz", "dict", "bool")
NUMERIC = ("int", "float")


def base_column(column: str) -> str:
    """The column of ``t`` or ``u`` a relation's column comes from (``a_i`` is ``i``)."""
    if column in COLUMNS or column in U_COLUMNS or column == DERIVED:
        return column
    return column.split("_", 1)[1]


def kind_of(column: str) -> str:
    """The kind of a column of a relation (``a_i`` is an ``int``)."""
    name = base_column(column)
    if name == DERIVED:
        return "int"
    return COLUMNS[name] if name in COLUMNS else U_COLUMNS[name]


# -- literals ------------------------------------------------------------------


def sql_literal(value: Any, kind: str) -> str:
    """``value`` of ``kind`` as a SQL literal every dialect here reads."""
    if kind == "bool":
        return "TRUE" if value else "FALSE"
    if kind == "int":
        return str(int(value))
    if kind == "float":
        assert math.isfinite(value)
        return f"CAST('{float(value)!r}' AS DOUBLE)"
    if kind in ("string", "dict"):
        return "'" + str(value).replace("'", "''") + "'"
    if kind == "date":
        return f"CAST('{value.isoformat()}' AS DATE)"
    if kind == "timestamp":
        return f"CAST('{value.isoformat(sep=' ')}' AS TIMESTAMP)"
    if kind == "list":
        return "[" + ", ".join(str(int(item)) for item in value) + "]"
    raise ValueError(f"no literal for kind {kind!r}")


def polars_literal(value: Any, kind: str) -> pl.Expr:
    """``value`` of ``kind`` as a Polars literal."""
    import polars as pl

    if kind == "float":
        return pl.lit(float(value), dtype=pl.Float64)
    if kind == "timestamp":
        return pl.lit(value, dtype=pl.Datetime("us"))
    if kind == "list":
        return pl.lit(pl.Series([list(value)], dtype=pl.List(pl.Int64)))
    return pl.lit(value)


def polars_values(values: Sequence[Any], kind: str) -> pl.Expr | list[Any]:
    """``values`` of ``kind`` as the right-hand side of ``is_in``."""
    import polars as pl

    dtypes = {"float": pl.Float64, "timestamp": pl.Datetime("us"), "date": pl.Date}
    if kind in dtypes:
        return pl.lit(pl.Series(values, dtype=dtypes[kind]).implode())
    return list(values)


# -- predicates ----------------------------------------------------------------


class Predicate:
    """A boolean expression over the columns of a relation."""

    def sql(self, dialect: Dialect) -> str:
        raise NotImplementedError

    def polars(self) -> pl.Expr:
        raise NotImplementedError

    def columns(self) -> list[str]:
        raise NotImplementedError


_SQL_OPS = {"<": "<", "<=": "<=", "=": "=", "!=": "<>", ">": ">", ">=": ">="}


def _polars_compare(left: pl.Expr, op: str, right: pl.Expr) -> pl.Expr:
    compare: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return compare[op](left, right)


@dataclass(frozen=True)
class Compare(Predicate):
    """``column op literal``."""

    column: str
    op: str
    value: Any

    def sql(self, dialect: Dialect) -> str:
        return f"{self.column} {_SQL_OPS[self.op]} {sql_literal(self.value, kind_of(self.column))}"

    def polars(self) -> pl.Expr:
        import polars as pl

        literal = polars_literal(self.value, kind_of(self.column))
        return _polars_compare(pl.col(self.column), self.op, literal)

    def columns(self) -> list[str]:
        return [self.column]


@dataclass(frozen=True)
class CompareColumns(Predicate):
    """``left op right``, two columns of one kind."""

    left: str
    op: str
    right: str

    def sql(self, dialect: Dialect) -> str:
        return f"{self.left} {_SQL_OPS[self.op]} {self.right}"

    def polars(self) -> pl.Expr:
        import polars as pl

        return _polars_compare(pl.col(self.left), self.op, pl.col(self.right))

    def columns(self) -> list[str]:
        return [self.left, self.right]


@dataclass(frozen=True)
class Between(Predicate):
    """``column BETWEEN low AND high`` (both ends included)."""

    column: str
    low: Any
    high: Any

    def sql(self, dialect: Dialect) -> str:
        kind = kind_of(self.column)
        low, high = sql_literal(self.low, kind), sql_literal(self.high, kind)
        return f"{self.column} BETWEEN {low} AND {high}"

    def polars(self) -> pl.Expr:
        import polars as pl

        kind = kind_of(self.column)
        return pl.col(self.column).is_between(
            polars_literal(self.low, kind), polars_literal(self.high, kind), closed="both"
        )

    def columns(self) -> list[str]:
        return [self.column]


@dataclass(frozen=True)
class InList(Predicate):
    """``column IN (values...)``."""

    column: str
    values: tuple[Any, ...]

    def sql(self, dialect: Dialect) -> str:
        kind = kind_of(self.column)
        return f"{self.column} IN ({', '.join(sql_literal(v, kind) for v in self.values)})"

    def polars(self) -> pl.Expr:
        import polars as pl

        return pl.col(self.column).is_in(polars_values(self.values, kind_of(self.column)))

    def columns(self) -> list[str]:
        return [self.column]


@dataclass(frozen=True)
class IsNull(Predicate):
    """``column IS [NOT] NULL``."""

    column: str
    negated: bool

    def sql(self, dialect: Dialect) -> str:
        return f"{self.column} IS {'NOT ' if self.negated else ''}NULL"

    def polars(self) -> pl.Expr:
        import polars as pl

        column = pl.col(self.column)
        return column.is_not_null() if self.negated else column.is_null()

    def columns(self) -> list[str]:
        return [self.column]


@dataclass(frozen=True)
class BoolColumn(Predicate):
    """A boolean column used as the predicate itself."""

    column: str

    def sql(self, dialect: Dialect) -> str:
        return self.column

    def polars(self) -> pl.Expr:
        import polars as pl

        return pl.col(self.column)

    def columns(self) -> list[str]:
        return [self.column]


@dataclass(frozen=True)
class StringMatch(Predicate):
    """``starts_with``, substring ``contains`` or ``LIKE`` on a string column.

    A ``like`` pattern holds ``%`` and ``_`` only as wildcards (no escapes).
    """

    column: str
    how: Literal["starts_with", "contains", "like"]
    pattern: str

    def sql(self, dialect: Dialect) -> str:
        quoted = sql_literal(self.pattern, "string")
        if self.how == "like":
            return f"{self.column} LIKE {quoted}"
        if self.how == "starts_with":
            return f"starts_with({self.column}, {quoted})"
        if dialect == "duckdb":
            return f"contains({self.column}, {quoted})"
        return f"strpos({self.column}, {quoted}) > 0"

    def polars(self) -> pl.Expr:
        import polars as pl

        if self.how == "like":
            return pl.sql_expr(self.sql("polars"))
        if self.how == "starts_with":
            return pl.col(self.column).str.starts_with(self.pattern)
        return pl.col(self.column).str.contains(self.pattern, literal=True)

    def columns(self) -> list[str]:
        return [self.column]


@dataclass(frozen=True)
class Not(Predicate):
    item: Predicate

    def sql(self, dialect: Dialect) -> str:
        return f"NOT ({self.item.sql(dialect)})"

    def polars(self) -> pl.Expr:
        return ~self.item.polars()

    def columns(self) -> list[str]:
        return self.item.columns()


@dataclass(frozen=True)
class And(Predicate):
    items: tuple[Predicate, ...]

    def sql(self, dialect: Dialect) -> str:
        return " AND ".join(f"({item.sql(dialect)})" for item in self.items)

    def polars(self) -> pl.Expr:
        expr = self.items[0].polars()
        for item in self.items[1:]:
            expr = expr & item.polars()
        return expr

    def columns(self) -> list[str]:
        return [name for item in self.items for name in item.columns()]


@dataclass(frozen=True)
class Or(Predicate):
    items: tuple[Predicate, ...]

    def sql(self, dialect: Dialect) -> str:
        return " OR ".join(f"({item.sql(dialect)})" for item in self.items)

    def polars(self) -> pl.Expr:
        expr = self.items[0].polars()
        for item in self.items[1:]:
            expr = expr | item.polars()
        return expr

    def columns(self) -> list[str]:
        return [name for item in self.items for name in item.columns()]


# -- expressions -----------------------------------------------------------------


class Expr:
    """A computed value: a projection item or the left side of a comparison.

    ``kind`` is the kind of its result (see :data:`COLUMNS`); ``floating``
    whether it is a float sum, which depends on summation order.
    """

    kind: str = "int"
    floating: bool = False

    def sql(self, dialect: Dialect) -> str:
        raise NotImplementedError

    def polars(self) -> pl.Expr:
        raise NotImplementedError

    def columns(self) -> list[str]:
        raise NotImplementedError


#: Cast targets: SQL type, Polars type name, result kind.
CASTS: dict[str, tuple[str, str, str]] = {
    "int64": ("BIGINT", "Int64", "int"),
    "int16": ("SMALLINT", "Int16", "int"),
    "float64": ("DOUBLE", "Float64", "float"),
    "string": ("VARCHAR", "String", "string"),
}


@dataclass(frozen=True)
class Cast(Expr):
    """``CAST(column AS target)``: raises where a value does not convert (strings to
    integers, out-of-range integers, NaN to an integer)."""

    column: str
    target: str

    @property
    def kind(self) -> str:  # type: ignore[override]
        return CASTS[self.target][2]

    def sql(self, dialect: Dialect) -> str:
        return f"CAST({self.column} AS {CASTS[self.target][0]})"

    def polars(self) -> pl.Expr:
        import polars as pl

        return pl.col(self.column).cast(getattr(pl, CASTS[self.target][1]), strict=True)

    def columns(self) -> list[str]:
        return [self.column]


#: String functions: result kind.
STRING_FUNCTIONS = {"upper": "string", "lower": "string", "length": "int", "prefix": "string"}


@dataclass(frozen=True)
class StringFunction(Expr):
    """``upper``, ``lower``, ``length`` (in characters), or the first two characters."""

    function: str
    column: str

    @property
    def kind(self) -> str:  # type: ignore[override]
        return STRING_FUNCTIONS[self.function]

    def sql(self, dialect: Dialect) -> str:
        if self.function == "length":
            return f"character_length({self.column})"
        if self.function == "prefix":
            return f"substr({self.column}, 1, 2)"
        return f"{self.function}({self.column})"

    def polars(self) -> pl.Expr:
        import polars as pl

        text = pl.col(self.column).str
        return {
            "upper": text.to_uppercase,
            "lower": text.to_lowercase,
            "length": text.len_chars,
            "prefix": lambda: text.slice(0, 2),
        }[self.function]()

    def columns(self) -> list[str]:
        return [self.column]


@dataclass(frozen=True)
class Arithmetic(Expr):
    """``column op value`` on an integer column: overflows and divisions by zero,
    which some engines raise on."""

    column: str
    op: Literal["+", "-", "*", "/"]
    value: int

    def sql(self, dialect: Dialect) -> str:
        return f"({self.column} {self.op} {int(self.value)})"

    def polars(self) -> pl.Expr:
        import polars as pl

        column, value = pl.col(self.column), pl.lit(int(self.value))
        return {
            "+": lambda: column + value,
            "-": lambda: column - value,
            "*": lambda: column * value,
            "/": lambda: column / value,
        }[self.op]()

    def columns(self) -> list[str]:
        return [self.column]


WINDOW_FUNCTIONS = ("sum", "count", "rank", "running_sum", "row_number")


@dataclass(frozen=True)
class Window(Expr):
    """A window function over ``partition``.

    ``sum`` and ``count`` of ``column`` over the partition; ``rank`` of
    ``column`` (ties share a rank); ``running_sum`` of ``column`` and
    ``row_number``, both in the order of the unique ``id`` column (so the
    answer is fixed; only relations whose ``id`` is unique use those).
    """

    function: str
    column: str
    partition: str

    @property
    def kind(self) -> str:  # type: ignore[override]
        if self.function in ("sum", "running_sum"):
            return kind_of(self.column)
        return "int"

    @property
    def floating(self) -> bool:  # type: ignore[override]
        return self.function in ("sum", "running_sum") and kind_of(self.column) == "float"

    def sql(self, dialect: Dialect) -> str:
        over = f"PARTITION BY {self.partition}"
        if self.function in ("sum", "count"):
            return f"{self.function}({self.column}) OVER ({over})"
        if self.function == "rank":
            return f"rank() OVER ({over} ORDER BY {self.column} ASC NULLS LAST)"
        if self.function == "row_number":
            return f"row_number() OVER ({over} ORDER BY id)"
        return (
            f"sum({self.column}) OVER ({over} ORDER BY id "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        )

    def polars(self) -> pl.Expr:
        import polars as pl

        column = pl.col(self.column)
        if self.function == "sum":
            return column.sum().over(self.partition)
        if self.function == "count":
            return column.count().over(self.partition)
        if self.function == "rank":
            return column.rank("min").over(self.partition)
        if self.function == "row_number":
            return pl.col("id").rank("ordinal").over(self.partition)
        return column.cum_sum().over(self.partition, order_by="id")

    def columns(self) -> list[str]:
        return [self.column, self.partition]


@dataclass(frozen=True)
class CompareExpr(Predicate):
    """``expression op literal``, the literal of the expression's kind."""

    expression: Expr
    op: str
    value: Any

    def sql(self, dialect: Dialect) -> str:
        literal = sql_literal(self.value, self.expression.kind)
        return f"{self.expression.sql(dialect)} {_SQL_OPS[self.op]} {literal}"

    def polars(self) -> pl.Expr:
        literal = polars_literal(self.value, self.expression.kind)
        return _polars_compare(self.expression.polars(), self.op, literal)

    def columns(self) -> list[str]:
        return self.expression.columns()


# -- relations -----------------------------------------------------------------

#: The name the second table is registered under.
OTHER = "u"


class Relation:
    """What a query reads: the table, part of it, or a combination with itself or ``u``."""

    #: Whether ``id`` is a column and unique (windows in ``id`` order need it).
    unique_id = True
    #: Whether Polars keeps the rows in scan order through it.
    polars_ordered = True
    #: Whether it keeps only some rows, which rows depending on scan order.
    cuts = False

    def sql(self, dialect: Dialect, table: str) -> str:
        raise NotImplementedError

    def with_sql(self, dialect: Dialect, table: str) -> str:
        """A ``WITH`` clause the query starts with, or nothing."""
        return ""

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        raise NotImplementedError

    def columns(self) -> list[str]:
        return list(COLUMNS)

    def whole(self) -> Relation:
        """The relation without its cut (a superset of any answer of it)."""
        return self


@dataclass(frozen=True)
class Table(Relation):
    """The registered table itself."""

    def sql(self, dialect: Dialect, table: str) -> str:
        return table

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frames["t"]


@dataclass(frozen=True)
class Head(Relation):
    """``rows`` rows of the table from ``offset`` on (``LIMIT … OFFSET`` under the filter;
    Polars ``head`` or ``slice``)."""

    rows: int
    offset: int = 0
    cuts = True

    def sql(self, dialect: Dialect, table: str) -> str:
        offset = f" OFFSET {self.offset}" if self.offset else ""
        return f"(SELECT * FROM {table} LIMIT {self.rows}{offset}) AS h"

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        if self.offset:
            return frames["t"].slice(self.offset, self.rows)
        return frames["t"].head(self.rows)

    def whole(self) -> Relation:
        return Table()


@dataclass(frozen=True)
class Tail(Relation):
    """The last ``rows`` rows of the table: Polars ``tail``, which SQL does not have."""

    rows: int
    cuts = True

    def sql(self, dialect: Dialect, table: str) -> str:
        raise Unrenderable("tail has no SQL rendering")

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frames["t"].tail(self.rows)

    def whole(self) -> Relation:
        return Table()


@dataclass(frozen=True)
class Derived(Relation):
    """The table with a computed integer column ``w`` (Polars ``with_columns``)."""

    expression: Expr

    def sql(self, dialect: Dialect, table: str) -> str:
        return f"(SELECT *, {self.expression.sql(dialect)} AS {DERIVED} FROM {table}) AS r"

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frames["t"].with_columns(self.expression.polars().alias(DERIVED))

    def columns(self) -> list[str]:
        return [*COLUMNS, DERIVED]


def _where_sql(where: Predicate | None, dialect: Dialect) -> str:
    return f" WHERE {where.sql(dialect)}" if where is not None else ""


def _filtered(frame: pl.LazyFrame, where: Predicate | None) -> pl.LazyFrame:
    return frame if where is None else frame.filter(where.polars())


@dataclass(frozen=True)
class UnionAll(Relation):
    """Two filters of the table, one after the other (``UNION ALL``; Polars ``concat``)."""

    first: Predicate | None
    second: Predicate | None
    unique_id = False

    def sql(self, dialect: Dialect, table: str) -> str:
        return (
            f"(SELECT * FROM {table}{_where_sql(self.first, dialect)} UNION ALL "
            f"SELECT * FROM {table}{_where_sql(self.second, dialect)}) AS r"
        )

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        import polars as pl

        return pl.concat([_filtered(frames["t"], self.first), _filtered(frames["t"], self.second)])


@dataclass(frozen=True)
class RepeatedCte(Relation):
    """A CTE of the filtered table, read twice: its rows whose ``key`` occurs more than once
    in it (a join of the CTE with its own ``GROUP BY``; in Polars one LazyFrame used twice)."""

    where: Predicate | None
    key: str
    polars_ordered = False

    def with_sql(self, dialect: Dialect, table: str) -> str:
        return f"WITH c AS (SELECT * FROM {table}{_where_sql(self.where, dialect)}) "

    def sql(self, dialect: Dialect, table: str) -> str:
        names = ", ".join(f"c.{name} AS {name}" for name in COLUMNS)
        return (
            f"(SELECT {names} FROM c JOIN (SELECT {self.key} AS gk, count(*) AS gn FROM c "
            f"GROUP BY {self.key}) AS g ON c.{self.key} = g.gk WHERE g.gn > 1) AS r"
        )

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        import polars as pl

        common = _filtered(frames["t"], self.where)
        repeated = (
            common.group_by(self.key).agg(pl.len().alias("gn")).filter(pl.col("gn") > 1)
        ).select(self.key)
        return common.join(repeated, on=self.key, how="semi")


@dataclass(frozen=True)
class InSubquery(Relation):
    """The rows of the table whose ``column`` is [not] ``IN (SELECT other FROM u WHERE …)``
    (Polars: a semi or anti join)."""

    column: str
    other: str
    other_where: Predicate | None
    negated: bool
    polars_ordered = False

    def sql(self, dialect: Dialect, table: str) -> str:
        subquery = f"SELECT {self.other} FROM {OTHER}{_where_sql(self.other_where, dialect)}"
        not_ = "NOT " if self.negated else ""
        return f"(SELECT * FROM {table} WHERE {self.column} {not_}IN ({subquery})) AS r"

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        other = _filtered(frames[OTHER], self.other_where).select(self.other)
        how = "anti" if self.negated else "semi"
        return frames["t"].join(other, left_on=self.column, right_on=self.other, how=how)


@dataclass(frozen=True)
class JoinOther(Relation):
    """The table joined with the second table ``u`` on ``column = other``, ``u`` filtered first.

    Its columns are those of ``t`` and of ``u``.
    """

    how: Literal["inner", "left"]
    column: str
    other: str
    other_where: Predicate | None
    unique_id = False
    polars_ordered = False

    def sql(self, dialect: Dialect, table: str) -> str:
        outputs = ", ".join(
            [f"a.{name} AS {name}" for name in COLUMNS]
            + [f"b.{name} AS {name}" for name in U_COLUMNS]
        )
        join = "JOIN" if self.how == "inner" else "LEFT JOIN"
        right = f"(SELECT * FROM {OTHER}{_where_sql(self.other_where, dialect)})"
        return (
            f"(SELECT {outputs} FROM {table} AS a {join} {right} AS b "
            f"ON a.{self.column} = b.{self.other}) AS j"
        )

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        right = _filtered(frames[OTHER], self.other_where)
        return frames["t"].join(
            right, left_on=self.column, right_on=self.other, how=self.how, coalesce=False
        )

    def columns(self) -> list[str]:
        return [*COLUMNS, *U_COLUMNS]


@dataclass(frozen=True)
class SelfJoin(Relation):
    """The table joined with itself on a key, each side filtered first.

    Its columns are ``a_<name>`` (left side) and ``b_<name>`` (right side).
    """

    how: Literal["inner", "left"]
    left_key: str
    right_key: str
    left_where: Predicate | None
    right_where: Predicate | None
    unique_id = False
    polars_ordered = False

    def sql(self, dialect: Dialect, table: str) -> str:
        sides = [
            f"(SELECT * FROM {table}{_where_sql(where, dialect)})"
            for where in (self.left_where, self.right_where)
        ]
        outputs = ", ".join(
            f"{side}.{name} AS {side}_{name}" for side in ("a", "b") for name in COLUMNS
        )
        join = "JOIN" if self.how == "inner" else "LEFT JOIN"
        return (
            f"(SELECT {outputs} FROM {sides[0]} AS a {join} {sides[1]} AS b "
            f"ON a.{self.left_key} = b.{self.right_key}) AS j"
        )

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        import polars as pl

        sides = []
        for prefix, where in (("a", self.left_where), ("b", self.right_where)):
            side = _filtered(frames["t"], where)
            sides.append(side.select([pl.col(name).alias(f"{prefix}_{name}") for name in COLUMNS]))
        return sides[0].join(
            sides[1],
            left_on=f"a_{self.left_key}",
            right_on=f"b_{self.right_key}",
            how=self.how,
            coalesce=False,
        )

    def columns(self) -> list[str]:
        return [f"{side}_{name}" for side in ("a", "b") for name in COLUMNS]


# -- outputs -------------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    """One ``ORDER BY`` term, on output column ``c<index>``."""

    index: int
    descending: bool
    nulls_first: bool

    def sql(self) -> str:
        return (
            f"c{self.index} {'DESC' if self.descending else 'ASC'} "
            f"NULLS {'FIRST' if self.nulls_first else 'LAST'}"
        )


def _sorted_limited(
    frame: pl.LazyFrame, order_by: tuple[SortKey, ...], limit: int | None
) -> pl.LazyFrame:
    if order_by:
        frame = frame.sort(
            [f"c{key.index}" for key in order_by],
            descending=[key.descending for key in order_by],
            nulls_last=[not key.nulls_first for key in order_by],
        )
    if limit is not None:
        frame = frame.head(limit)
    return frame


def _order_limit_sql(order_by: tuple[SortKey, ...], limit: int | None) -> str:
    text = ""
    if order_by:
        text += " ORDER BY " + ", ".join(key.sql() for key in order_by)
    if limit is not None:
        text += f" LIMIT {limit}"
    return text


def item_sql(item: str | Expr, dialect: Dialect) -> str:
    """A projection item (a column name or an expression) in ``dialect``."""
    return item if isinstance(item, str) else item.sql(dialect)


def item_polars(item: str | Expr) -> pl.Expr:
    """A projection item as a Polars expression."""
    import polars as pl

    return pl.col(item) if isinstance(item, str) else item.polars()


def item_kind(item: str | Expr) -> str:
    """The kind of a projection item's values."""
    return kind_of(item) if isinstance(item, str) else item.kind


@dataclass(frozen=True)
class Select:
    """Project ``items`` as ``c0, c1, ...`` (``None``: ``SELECT *``), optionally ``DISTINCT``,
    then sort and limit.

    An item is a column name or an :class:`Expr`. A non-empty ``order_by``
    covers every output column, or only ``c0`` when that is the unique ``id``
    (and float sums, which may round differently, follow it), so the order is
    total up to identical rows (and rows differing only in the sign of a zero).
    """

    items: tuple[str | Expr, ...] | None
    order_by: tuple[SortKey, ...] = ()
    limit: int | None = None
    distinct: bool = False

    @property
    def columns(self) -> tuple[str | Expr, ...] | None:
        return self.items

    @property
    def windowed(self) -> bool:
        """Whether an item is a window function (its values depend on the other rows)."""
        return any(isinstance(item, Window) for item in self.items or ())


@dataclass(frozen=True)
class Aggregate:
    """One aggregate function of a column, or ``count(*)``."""

    function: Literal["count_star", "count", "count_distinct", "sum", "min", "max", "avg"]
    column: str | None = None

    def sql(self, dialect: Dialect) -> str:
        if self.function == "count_star":
            return "count(*)"
        if self.function == "count_distinct":
            return f"count(DISTINCT {self.column})"
        if (
            dialect == "datafusion"
            and self.function in ("min", "max")
            and self.column is not None
            and kind_of(self.column) == "float"
        ):
            # DataFusion (55) answers a grouped min/max of floats holding NaN
            # differently from run to run over the same batches (it depends on
            # the order its partitions meet NaN), so over a cache and over the
            # table; NaN is left out of both.
            return (
                f"{self.function}(CASE WHEN isnan({self.column}) THEN NULL ELSE {self.column} END)"
            )
        return f"{self.function}({self.column})"

    def polars(self) -> pl.Expr:
        import polars as pl

        if self.function == "count_star":
            return pl.len()
        column = pl.col(self.column)
        return {
            "count": column.count,
            "count_distinct": lambda: column.drop_nulls().n_unique(),
            "sum": column.sum,
            "min": column.min,
            "max": column.max,
            "avg": column.mean,
        }[self.function]()

    @property
    def floating(self) -> bool:
        """Whether the result is a floating-point sum, which depends on summation order."""
        return self.function == "avg" or (
            self.function == "sum" and self.column is not None and kind_of(self.column) == "float"
        )


@dataclass(frozen=True)
class GroupBy:
    """``SELECT keys..., aggregates... GROUP BY keys``, outputs ``c0, c1, ...``.

    ``order_by`` sorts on the keys only (unique per group); without keys the
    result is one row.
    """

    keys: tuple[str, ...]
    aggregates: tuple[Aggregate, ...]
    order_by: tuple[SortKey, ...] = ()
    limit: int | None = None


@dataclass(frozen=True)
class Query:
    """``relation``, filtered by ``where``, then ``output``."""

    relation: Relation
    where: Predicate | None
    output: Select | GroupBy

    # -- rendering --

    def sql(self, dialect: Dialect, table: str = "t") -> str:
        """The query in ``dialect``, reading table ``table`` (and ``u``)."""
        prefix = self.relation.with_sql(dialect, table)
        source = self.relation.sql(dialect, table)
        where = f" WHERE {self.where.sql(dialect)}" if self.where is not None else ""
        output = self.output
        if isinstance(output, Select):
            if output.items is None:
                items = "*"
            else:
                items = ", ".join(
                    f"{item_sql(item, dialect)} AS c{i}" for i, item in enumerate(output.items)
                )
            distinct = "DISTINCT " if output.distinct else ""
            return f"{prefix}SELECT {distinct}{items} FROM {source}{where}" + _order_limit_sql(
                output.order_by, output.limit
            )
        keys = [f"{name} AS c{i}" for i, name in enumerate(output.keys)]
        aggregates = [
            f"{aggregate.sql(dialect)} AS c{len(output.keys) + i}"
            for i, aggregate in enumerate(output.aggregates)
        ]
        group = f" GROUP BY {', '.join(output.keys)}" if output.keys else ""
        return f"{prefix}SELECT {', '.join(keys + aggregates)} FROM {source}{where}{group}" + (
            _order_limit_sql(output.order_by, output.limit)
        )

    def polars(self, frames: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        """The query as a LazyFrame over ``frames`` (``t`` and ``u``)."""
        import polars as pl

        relation = self.relation.polars(frames)
        if self.where is not None:
            relation = relation.filter(self.where.polars())
        output = self.output
        if isinstance(output, Select):
            if output.items is not None:
                relation = relation.select(
                    [item_polars(item).alias(f"c{i}") for i, item in enumerate(output.items)]
                )
            if output.distinct:
                relation = relation.unique()
            return _sorted_limited(relation, output.order_by, output.limit)
        aggregates = [
            aggregate.polars().alias(f"c{len(output.keys) + i}")
            for i, aggregate in enumerate(output.aggregates)
        ]
        if output.keys:
            keys = [pl.col(name).alias(f"c{i}") for i, name in enumerate(output.keys)]
            relation = relation.group_by(keys).agg(aggregates)
        else:
            relation = relation.select(aggregates)
        return _sorted_limited(relation, output.order_by, output.limit)

    def describe(self) -> str:
        """The query in DuckDB's SQL (or the Polars plan, for Polars-only queries)."""
        try:
            return self.sql("duckdb")
        except Unrenderable:
            return repr(self)

    # -- what a comparison may rely on --

    @property
    def is_ordered(self) -> bool:
        """Whether an ``ORDER BY`` fixes the order of the result's rows."""
        return bool(self.output.order_by) or (
            isinstance(self.output, GroupBy) and not self.output.keys
        )

    def is_deterministic(self, keeps_order: bool) -> bool:
        """Whether the set of result rows is fixed, on an engine that keeps scan order or not.

        A ``LIMIT`` over rows in no fixed order may return any of them.
        """
        cut_fixed = not self.relation.cuts or keeps_order
        limit = self.output.limit
        if limit is None or self.output.order_by:
            return cut_fixed
        if isinstance(self.output, GroupBy):
            return not self.output.keys and cut_fixed
        return self.keeps_row_order(keeps_order)

    def keeps_row_order(self, keeps_order: bool) -> bool:
        """Whether the row order is fixed without ``ORDER BY``, on an engine that keeps scan order."""
        output = self.output
        return (
            keeps_order
            and isinstance(output, Select)
            and not output.distinct
            and self.relation.polars_ordered
        )

    def without_limits(self) -> Query:
        """This query without its ``LIMIT``s and cuts: a superset of any answer of it."""
        output = self.output
        if isinstance(output, Select):
            output = Select(output.items, output.order_by, None, output.distinct)
        else:
            output = GroupBy(output.keys, output.aggregates, output.order_by, None)
        return Query(self.relation.whole(), self.where, output)

    def floating_columns(self) -> list[tuple[int, str]]:
        """Output columns holding float sums: (index, column of ``t`` or ``u`` summed)."""
        output = self.output
        if isinstance(output, GroupBy):
            first = len(output.keys)
            return [
                (first + index, base_column(aggregate.column))
                for index, aggregate in enumerate(output.aggregates)
                if aggregate.floating and aggregate.column is not None
            ]
        return [
            (index, base_column(item.columns()[0]))
            for index, item in enumerate(output.items or ())
            if isinstance(item, Expr) and item.floating
        ]
