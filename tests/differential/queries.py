"""A small query AST that renders to SQL (DuckDB, DataFusion, Polars SQL) and to a Polars LazyFrame.

A :class:`Query` reads a relation (the table ``t``, the first rows of it, or a
self-join of it), filters it, and either projects, optionally sorted and
limited, or groups and aggregates. Every node renders itself to each SQL
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

#: Kind of each column of the generated table; a join relation has every
#: column twice, as ``a_<name>`` and ``b_<name>``.
COLUMNS: dict[str, str] = {
    "i": "int",  # int64, small values and, rarely, extremes
    "k": "int",  # int16, a handful of values: a group and join key
    "f": "float",  # float64 with NaN, infinities and -0.0
    "s": "string",  # string, large_string or string_view; unicode and ''
    "d": "date",  # date32
    "ts": "timestamp",  # timestamp[us]
    "tz": "timestamp_tz",  # timestamp[us, tz=Europe/Paris]
    "b": "bool",
    "cat": "dict",  # dictionary<int32, string>, a dictionary of its own per batch
}

ORDERABLE = ("int", "float", "string", "date", "timestamp", "timestamp_tz", "dict", "bool")
NUMERIC = ("int", "float")


def kind_of(column: str) -> str:
    """The kind of a column of the table or of a join relation (``a_i`` is an ``int``)."""
    if column in COLUMNS:
        return COLUMNS[column]
    return COLUMNS[column.split("_", 1)[1]]


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
    raise ValueError(f"no literal for kind {kind!r}")


def polars_literal(value: Any, kind: str) -> pl.Expr:
    """``value`` of ``kind`` as a Polars literal."""
    import polars as pl

    if kind == "float":
        return pl.lit(float(value), dtype=pl.Float64)
    if kind == "timestamp":
        return pl.lit(value, dtype=pl.Datetime("us"))
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


# -- relations -----------------------------------------------------------------


class Relation:
    """What a query reads: the table, the first rows of it, or a self-join of it."""

    def sql(self, dialect: Dialect, table: str) -> str:
        raise NotImplementedError

    def polars(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        raise NotImplementedError

    def columns(self) -> list[str]:
        return list(COLUMNS)


@dataclass(frozen=True)
class Table(Relation):
    """The registered table itself."""

    def sql(self, dialect: Dialect, table: str) -> str:
        return table

    def polars(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame


@dataclass(frozen=True)
class Head(Relation):
    """The first ``rows`` rows of the table (a ``LIMIT`` under the query's filter)."""

    rows: int

    def sql(self, dialect: Dialect, table: str) -> str:
        return f"(SELECT * FROM {table} LIMIT {self.rows}) AS h"

    def polars(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.head(self.rows)


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

    def sql(self, dialect: Dialect, table: str) -> str:
        sides = []
        for where in (self.left_where, self.right_where):
            condition = f" WHERE {where.sql(dialect)}" if where is not None else ""
            sides.append(f"(SELECT * FROM {table}{condition})")
        outputs = ", ".join(
            f"{side}.{name} AS {side}_{name}" for side in ("a", "b") for name in COLUMNS
        )
        join = "JOIN" if self.how == "inner" else "LEFT JOIN"
        return (
            f"(SELECT {outputs} FROM {sides[0]} AS a {join} {sides[1]} AS b "
            f"ON a.{self.left_key} = b.{self.right_key}) AS j"
        )

    def polars(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        import polars as pl

        sides = []
        for prefix, where in (("a", self.left_where), ("b", self.right_where)):
            side = frame if where is None else frame.filter(where.polars())
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


@dataclass(frozen=True)
class Select:
    """Project ``columns`` as ``c0, c1, ...`` (``None``: ``SELECT *``), then sort and limit.

    A non-empty ``order_by`` covers every output column, so the order is total
    up to identical rows (and rows differing only in the sign of a zero).
    """

    columns: tuple[str, ...] | None
    order_by: tuple[SortKey, ...] = ()
    limit: int | None = None


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
        """The query in ``dialect``, reading table ``table``."""
        source = self.relation.sql(dialect, table)
        where = f" WHERE {self.where.sql(dialect)}" if self.where is not None else ""
        output = self.output
        if isinstance(output, Select):
            if output.columns is None:
                items = "*"
            else:
                items = ", ".join(f"{name} AS c{i}" for i, name in enumerate(output.columns))
            return f"SELECT {items} FROM {source}{where}" + _order_limit_sql(
                output.order_by, output.limit
            )
        keys = [f"{name} AS c{i}" for i, name in enumerate(output.keys)]
        aggregates = [
            f"{aggregate.sql(dialect)} AS c{len(output.keys) + i}"
            for i, aggregate in enumerate(output.aggregates)
        ]
        group = f" GROUP BY {', '.join(output.keys)}" if output.keys else ""
        return f"SELECT {', '.join(keys + aggregates)} FROM {source}{where}{group}" + (
            _order_limit_sql(output.order_by, output.limit)
        )

    def polars(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """The query as a LazyFrame over ``frame`` (the table)."""
        import polars as pl

        relation = self.relation.polars(frame)
        if self.where is not None:
            relation = relation.filter(self.where.polars())
        output = self.output
        if isinstance(output, Select):
            if output.columns is not None:
                relation = relation.select(
                    [pl.col(name).alias(f"c{i}") for i, name in enumerate(output.columns)]
                )
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
        """The query in DuckDB's SQL, for failure messages."""
        return self.sql("duckdb")

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
        head_fixed = not isinstance(self.relation, Head) or keeps_order
        limit = self.output.limit
        if limit is None:
            return head_fixed
        if self.output.order_by:
            return head_fixed
        if isinstance(self.output, GroupBy):
            return not self.output.keys and head_fixed
        return keeps_order and not isinstance(self.relation, SelfJoin)

    def keeps_row_order(self, keeps_order: bool) -> bool:
        """Whether the row order is fixed without ``ORDER BY``, on an engine that keeps scan order."""
        return (
            keeps_order
            and isinstance(self.output, Select)
            and not isinstance(self.relation, SelfJoin)
        )

    def without_limits(self) -> Query:
        """This query without its ``LIMIT``s: a superset of any answer of it."""
        relation = Table() if isinstance(self.relation, Head) else self.relation
        output = self.output
        if isinstance(output, Select):
            output = Select(output.columns, output.order_by, None)
        else:
            output = GroupBy(output.keys, output.aggregates, output.order_by, None)
        return Query(relation, self.where, output)

    def output_kinds(self) -> list[str | None]:
        """The kind of each output column (``None`` for an aggregate)."""
        output = self.output
        if isinstance(output, Select):
            columns = self.relation.columns() if output.columns is None else list(output.columns)
            return [kind_of(name) for name in columns]
        return [kind_of(name) for name in output.keys] + [None] * len(output.aggregates)
