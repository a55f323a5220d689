"""Comparing a query's result over a cache with the same engine's result over the table.

Values compare exactly: NaN equals NaN, null equals null, and a float zero's
sign counts. The exceptions, each because a correct engine may legitimately
give either answer:

- Float sums and averages are compared within a bound on the rounding error
  of summing in another order (engines split the input differently across
  threads and batches, and the cache's batches reach the engine at other
  moments than the table's). Summing ``n`` values in any order is exact to
  within ``(n - 1) * eps * sum(|x|)``; the bound used is four times that,
  over all the values the aggregate could have read.
- Where several rows compare equal under ``ORDER BY`` (``0.0`` and ``-0.0``
  sort together) or rows are grouped or limited, which of ``0.0`` and ``-0.0``
  an engine returns depends on the order it met them, so zeros compare equal
  whatever their sign.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tests.differential.queries import U_COLUMNS, Query, RepeatedCte, Select, Table

_EPS = 2.0**-52


@dataclass(frozen=True)
class Outcome:
    """A query's result, or the type and message of the exception it raised."""

    table: pa.Table | None
    error: BaseException | None = None

    @property
    def error_type(self) -> str:
        return type(self.error).__name__

    @property
    def error_kind(self) -> str | None:
        """The kind of the error (:func:`error_kind`), or None."""
        return None if self.error is None else error_kind(self.error)


def _canonical(value: Any, strict_zero: bool) -> tuple[Any, ...]:
    """A sort and equality key: None first, NaN last, zeros by sign when ``strict_zero``."""
    if value is None:
        return (0,)
    if isinstance(value, list):
        return (1, tuple(_canonical(item, strict_zero) for item in value))
    if isinstance(value, float):
        if math.isnan(value):
            return (2,)
        if value == 0 and not strict_zero:
            return (1, 0.0, 1.0)
        return (1, value, math.copysign(1.0, value))
    return (1, value)


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of ``table`` as Python values."""
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True)) if columns else []


def _values_match(expected: Any, actual: Any, strict_zero: bool, tolerance: float | None) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        if tolerance is not None and math.isfinite(expected) and math.isfinite(actual):
            return abs(expected - actual) <= tolerance
        if expected == 0 and actual == 0 and strict_zero:
            return math.copysign(1.0, expected) == math.copysign(1.0, actual)
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def _row_matches(
    expected: Sequence[Any], actual: Sequence[Any], strict_zero: bool, tolerances: dict[int, float]
) -> bool:
    return all(
        _values_match(e, a, strict_zero, tolerances.get(index))
        for index, (e, a) in enumerate(zip(expected, actual, strict=True))
    )


def _row_key(row: Sequence[Any], strict_zero: bool, tolerances: dict[int, float]) -> tuple:
    # Columns compared within a tolerance sort last, so they never decide
    # the order of rows whose exact columns differ.
    exact = [_canonical(v, strict_zero) for i, v in enumerate(row) if i not in tolerances]
    loose = [_canonical(v, strict_zero) for i, v in enumerate(row) if i in tolerances]
    return (*exact, *loose)


def _excerpt(values: Sequence[Any], limit: int = 12) -> str:
    shown = "\n    ".join(repr(v) for v in values[:limit])
    more = f"\n    ... {len(values) - limit} more" if len(values) > limit else ""
    return f"\n    {shown}{more}"


def _schema_difference(expected: pa.Table, actual: pa.Table) -> str | None:
    want = [(field.name, field.type) for field in expected.schema]
    got = [(field.name, field.type) for field in actual.schema]
    if want != got:
        return f"schema differs: expected {want}, got {got}"
    return None


def _out_of_order(
    want: list[tuple[Any, ...]],
    got: list[tuple[Any, ...]],
    columns: Sequence[int],
    strict_zero: bool,
    tolerances: dict[int, float],
) -> str | None:
    """The first row whose ``columns`` differ between two results in row order, or None."""
    for index, (e, a) in enumerate(zip(want, got, strict=True)):
        keys_e = [e[i] for i in columns]
        keys_a = [a[i] for i in columns]
        if not _row_matches(keys_e, keys_a, strict_zero, tolerances):
            return (
                f"row {index} is {a!r}, expected {e!r} (rows in order):"
                f"{_excerpt(got)}\n  expected:{_excerpt(want)}"
            )
    return None


def difference(
    expected: pa.Table,
    actual: pa.Table,
    *,
    order_columns: Sequence[int] | None,
    positional: bool,
    strict_zero: bool,
    tolerances: dict[int, float],
) -> str | None:
    """What differs between two results, or None.

    ``positional``: rows must come in the same order. ``order_columns``: the
    ``ORDER BY`` columns, whose values must come in the same order (rows equal
    on them may come in any order). The rows must also be the same multiset.
    """
    schema = _schema_difference(expected, actual)
    if schema is not None:
        return schema
    want, got = rows(expected), rows(actual)
    if len(want) != len(got):
        return (
            f"{len(got)} rows instead of {len(want)}:{_excerpt(got)}\n  expected:{_excerpt(want)}"
        )
    if positional:
        every = range(len(expected.schema))
        return _out_of_order(want, got, every, strict_zero, tolerances)
    if order_columns:
        # Rows equal on the ORDER BY columns (0.0 and -0.0 included) may come in any order.
        problem = _out_of_order(want, got, order_columns, False, {})
        if problem is not None:
            return problem
    want_sorted = sorted(want, key=lambda row: _row_key(row, strict_zero, tolerances))
    got_sorted = sorted(got, key=lambda row: _row_key(row, strict_zero, tolerances))
    for e, a in zip(want_sorted, got_sorted, strict=True):
        if not _row_matches(e, a, strict_zero, tolerances):
            return (
                f"row {a!r} where {e!r} was expected (rows in any order):"
                f"{_excerpt(got_sorted)}\n  expected:{_excerpt(want_sorted)}"
            )
    return None


def subset_difference(
    superset: pa.Table,
    actual: pa.Table,
    *,
    exact_rows: int | None,
    max_rows: int | None,
    tolerances: dict[int, float],
) -> str | None:
    """What is wrong with ``actual`` as some rows of ``superset`` (a ``LIMIT`` of no fixed order)."""
    schema = _schema_difference(superset, actual)
    if schema is not None:
        return schema
    pool, got = rows(superset), rows(actual)
    if exact_rows is not None and len(got) != exact_rows:
        return f"{len(got)} rows instead of {exact_rows}:{_excerpt(got)}"
    if max_rows is not None and len(got) > max_rows:
        return f"{len(got)} rows, more than {max_rows}:{_excerpt(got)}"
    if not tolerances:
        available = Counter(tuple(_canonical(v, False) for v in row) for row in pool)
        for row in got:
            key = tuple(_canonical(v, False) for v in row)
            if available[key] == 0:
                return f"row {row!r} is not a row of the unlimited result:{_excerpt(pool)}"
            available[key] -= 1
        return None
    remaining = list(pool)
    for row in got:
        match = next(
            (i for i, r in enumerate(remaining) if _row_matches(r, row, False, tolerances)), None
        )
        if match is None:
            return f"row {row!r} is not a row of the unlimited result:{_excerpt(pool)}"
        del remaining[match]
    return None


def tolerances(query: Query, tables: dict[str, pa.Table]) -> dict[int, float]:
    """Output column -> how far a float sum or average may move with summation order.

    ``tables`` holds ``t`` and ``u`` by name.
    """
    # A relation other than the table may hold a value of t (of u) once per row
    # of the other side (a join) or twice (a UNION ALL).
    repeats = 1
    if not isinstance(query.relation, (Table, RepeatedCte)):
        repeats = max(tables["t"].num_rows, tables["u"].num_rows, 2)
    bounds: dict[int, float] = {}
    for index, name in query.floating_columns():
        table = tables["u" if name in U_COLUMNS else "t"]
        if name not in table.column_names:
            # A column the query derives (an average of character lengths):
            # integers, summed exactly whatever the order.
            continue
        values = [
            abs(float(v))
            for v in table.column(name).to_pylist()
            if v is not None and math.isfinite(v)
        ]
        count, total = len(values), math.fsum(values)
        count, total = count * repeats, total * repeats
        bounds[index] = 4 * _EPS * max(count, 1) * total
    return bounds


def strict_zero_sign(query: Query) -> bool:
    """Whether the sign of a zero is fixed: rows neither grouped, made distinct nor limited."""
    output = query.output
    return isinstance(output, Select) and output.limit is None and not output.distinct


#: Error kinds by what an engine's message says, the first that matches.
_KINDS_BY_MESSAGE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("panic", ("panicked",)),
    ("overflow", ("overflow", "out of range")),
    ("division by zero", ("divide by zero", "division by zero")),
    (
        "conversion",
        ("cast", "convert", "conversion", "failed to parse", "could not parse", "strict"),
    ),
    ("unsupported", ("not implemented", "not supported", "unsupported", "no kernel")),
    ("type", ("type", "dtype", "cannot compare", "comparison between", "binder error")),
    ("no such column", ("not found", "no field", "does not exist", "unknown column")),
)


def error_kind(error: BaseException) -> str:
    """A small, engine-independent name for what went wrong.

    Engines raise their own exception classes, or (DataFusion) plain
    ``Exception`` with the real error in the message, so the kind comes from
    the class and the message: a Rust panic (pyo3's ``PanicException``, a
    ``BaseException``) is ``"panic"``; a failed cast or parse ``"conversion"``;
    an integer overflow ``"overflow"``; a division by zero; an operation on
    types that do not have it (``"type"``, ``"unsupported"``); a column not
    found. Anything else is the exception's class name.
    """
    name = type(error).__name__
    if name == "PanicException":
        return "panic"
    if name == "Unrenderable":
        return "unrenderable"
    message = str(error).lower()
    for kind, markers in _KINDS_BY_MESSAGE:
        if any(marker in message for marker in markers):
            return kind
    if name in ("ArrowNotImplementedError", "NotImplementedException"):
        return "unsupported"
    if name in ("ArrowTypeError", "BinderException", "SchemaError", "InvalidOperationError"):
        return "type"
    return name


# -- failures --------------------------------------------------------------------


class Mismatch(AssertionError):
    """A cache's answer differs from the plain table's.

    One subclass per kind of difference, so that Hypothesis, which tells
    failures apart by exception type, shrinks and reports each kind on its own
    instead of letting the most frequent one hide the others.
    """


class WrongAnswer(Mismatch):
    """Both answered; the rows differ."""


class ErrorHidden(Mismatch):
    """The table raised; the cache answered."""


class OtherError(Mismatch):
    """Both raised, errors of different kinds."""


class CacheRaised(Mismatch):
    """The table answered; the cache raised."""


class CachePanicked(Mismatch):
    """The table answered (or raised an ordinary error); the engine panicked over the cache."""


class RegistrationFailed(Mismatch):
    """Opening the cache on the path raised."""


def classify(expected: Outcome, got: Outcome) -> type[Mismatch]:
    """The kind of difference between two outcomes known to differ."""
    if got.error_kind == "panic":
        return CachePanicked
    if got.error is None:
        return WrongAnswer if expected.error is None else ErrorHidden
    return CacheRaised if expected.error is None else OtherError
