"""A Polars predicate as a tree batch statistics can judge: which batches it may keep.

Polars hands an IO source its pushed-down predicate as a ``polars.Expr``.
:func:`predicate_node` reads the expression's serialised form and rewrites it
into the tree of :mod:`batchcorder._scan.tree`, or answers None: then no batch
is skipped and none passes without the predicate being evaluated.

Skipping a batch, or passing it whole, means the predicate is not evaluated
on its rows, so a predicate is rewritten only if no part of it can raise on
any data, and only if every part of it is understood. Each part must be one
of:

- a comparison of a column with a literal whose type Polars compares with
  the column's without raising and exactly as pyarrow compares the bounds
  (integers with integer and float columns, floats with float columns,
  strings, booleans, dates, timestamps of the same unit and time zone);
- ``&``, ``|``, ``~`` of such parts, a boolean column or literal;
- ``is_null``, ``is_not_null`` of a column or such a part, ``is_between``
  of a column and two literals.

Anything else (a cast, arithmetic, a string or list function, a comparison
of two columns, a literal of another type) leaves the whole predicate to
Polars: it may raise on some rows, and must raise as it does over the table.

Polars' meaning must be kept, not pyarrow's, where they differ:

- Polars orders NaN above every number and equal to itself; IEEE comparisons
  (pyarrow's, used on the bounds) do not. A batch holding NaN has no bounds
  (:mod:`batchcorder._statistics`), and a NaN or infinite literal (which the
  serialised form writes as null) is not understood.
- A dictionary column is a Polars ``Categorical``, whose order need not be
  its values' byte order: it is not understood.
- Polars compares a literal with a column of another type in their common
  type (``Int128`` for integers of mixed sign, the column's time unit for a
  timestamp): a literal is understood only where it converts to the
  column's type exactly, and is then compared as that type.

The serialised form is Polars' own and may change between Polars versions;
what cannot be read is not understood.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batchcorder._adapter_kit import Call, FieldRef, Literal

if TYPE_CHECKING:
    import polars as pl

    from batchcorder._adapter_kit import Node

__all__ = ["predicate_node"]

_COMPARISONS = {
    "Eq": "equal",
    "NotEq": "not_equal",
    "Lt": "less",
    "LtEq": "less_equal",
    "Gt": "greater",
    "GtEq": "greater_equal",
}
_LOGICAL = {
    "And": "and_kleene",
    "LogicalAnd": "and_kleene",
    "Or": "or_kleene",
    "LogicalOr": "or_kleene",
}
_INTEGER_LITERALS = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}
)
_FLOAT_LITERALS = frozenset({"Float32", "Float64"})
#: Integers a float64 / float32 holds exactly, whatever their size below these.
_FLOAT64_EXACT = 1 << 53
_FLOAT32_EXACT = 1 << 24
_TIME_UNITS = {"Milliseconds": "ms", "Microseconds": "us", "Nanoseconds": "ns"}
_BETWEEN = {
    "Both": ("greater_equal", "less_equal"),
    "Left": ("greater_equal", "less"),
    "Right": ("greater", "less_equal"),
    "None": ("greater", "less"),
}


class _NotUnderstood(Exception):
    """A part of a predicate whose outcome, or whether it raises, statistics cannot tell."""


def predicate_node(predicate: pl.Expr, schema: pa.Schema) -> Node | None:
    """The tree of ``predicate`` for :func:`batchcorder._scan.predicates.select_batches`; None if any part is not understood.

    Parameters
    ----------
    predicate : polars.Expr
        The predicate Polars pushed into the scan.
    schema : pyarrow.Schema
        The cache's schema.

    Returns
    -------
    Node or None
        None where some part of the predicate may raise, or is not
        understood: the predicate must then be evaluated on every row.

    Examples
    --------
    >>> import polars as pl
    >>> import pyarrow as pa
    >>> schema = pa.schema([("x", pa.int64()), ("l", pa.list_(pa.int64()))])
    >>> predicate_node((pl.col("x") > pl.lit(3, pl.Int64)) & pl.col("x").is_not_null(), schema)
    Call(function='and_kleene', arguments=(Call(function='greater', arguments=(FieldRef(name='x'), Literal(value=<pyarrow.Int64Scalar: 3>)), options=None), Call(function='is_valid', arguments=(FieldRef(name='x'),), options=None)), options=None)
    >>> predicate_node((pl.col("x") > 3) & (pl.col("l") > pl.lit([0])), schema) is None
    True
    """
    try:
        tree = json.loads(predicate.meta.serialize(format="json"))
    except Exception:  # an expression Polars cannot serialise, or another format
        return None
    try:
        return _predicate(tree, schema)
    except _NotUnderstood:
        return None


def _single(tree: Any) -> tuple[str, Any]:
    """The kind and body of a serialised expression ``{kind: body}``."""
    if not isinstance(tree, dict) or len(tree) != 1:
        raise _NotUnderstood(tree)
    ((kind, body),) = tree.items()
    return kind, body


def _predicate(tree: Any, schema: pa.Schema) -> Node:
    """A part giving a boolean for each row, which cannot raise."""
    kind, body = _single(tree)
    if kind == "Column":
        column = _column(body, schema)
        if not pa.types.is_boolean(schema.field(column.name).type):
            raise _NotUnderstood(tree)  # a filter on a non-boolean column raises
        return column
    if kind == "Literal":
        value = _scalar(body)
        if value[0] != "Boolean":
            raise _NotUnderstood(tree)
        return Literal(pa.scalar(value[1], pa.bool_()))
    if kind == "BinaryExpr" and isinstance(body, dict):
        op = body.get("op")
        if op in _LOGICAL:
            left, right = (
                _predicate(body.get("left"), schema),
                _predicate(body.get("right"), schema),
            )
            return Call(_LOGICAL[op], (left, right), None)
        if op in _COMPARISONS:
            return _comparison(_COMPARISONS[op], body.get("left"), body.get("right"), schema)
    if kind == "Function" and isinstance(body, dict):
        return _function(body, schema)
    raise _NotUnderstood(tree)


def _column(name: Any, schema: pa.Schema) -> FieldRef:
    if not isinstance(name, str) or schema.get_field_index(name) < 0:
        raise _NotUnderstood(name)
    if pa.types.is_dictionary(schema.field(name).type):
        raise _NotUnderstood(name)  # a Categorical in Polars, ordered its own way
    return FieldRef(name)


def _comparison(function: str, left: Any, right: Any, schema: pa.Schema) -> Node:
    """A column compared with a literal, on either side."""
    left_kind, left_body = _single(left)
    right_kind, right_body = _single(right)
    if left_kind == "Column" and right_kind == "Literal":
        column = _column(left_body, schema)
        return Call(function, (column, _literal(right_body, column, schema)), None)
    if left_kind == "Literal" and right_kind == "Column":
        column = _column(right_body, schema)
        return Call(function, (_literal(left_body, column, schema), column), None)
    raise _NotUnderstood((left, right))


def _scalar(body: Any) -> tuple[str, Any]:
    """The Polars type and value of a typed literal ``{"Scalar": {type: value}}``."""
    if not isinstance(body, dict) or set(body) != {"Scalar"}:
        raise _NotUnderstood(body)
    dtype, value = _single(body["Scalar"])
    if value is None:
        # A null, or a float JSON cannot write (NaN, an infinity).
        raise _NotUnderstood(body)
    return dtype, value


def _literal(body: Any, column: FieldRef, schema: pa.Schema) -> Literal:
    """A literal compared with ``column``, as a scalar of the column's type; else not understood."""
    column_type = schema.field(column.name).type
    if isinstance(body, dict) and set(body) == {"Dyn"}:
        kind, value = _single(body["Dyn"])
        dtype = {"Int": "Int64", "Float": "Float64"}.get(kind)
        if dtype is None:
            raise _NotUnderstood(body)
    else:
        dtype, value = _scalar(body)
    try:
        scalar = _converted(dtype, value, column_type)
    except (pa.ArrowException, KeyError, TypeError, ValueError, OverflowError) as error:
        raise _NotUnderstood(body) from error
    if scalar is None:
        raise _NotUnderstood(body)
    return Literal(scalar)


def _converted(dtype: str, value: Any, column_type: pa.DataType) -> pa.Scalar | None:
    """A literal of Polars type ``dtype`` as an exact scalar of ``column_type``; None if it has none.

    A bare Python number (``pl.col("x") > 3``) is a "dynamic" literal Polars
    types against the column; a typed one is compared in the common type.
    Either way, a value the column's type holds exactly compares as Polars
    compares it. Fractions stay unjudged against integer columns and float32
    ones, where Polars' common type and pyarrow's differ.
    """
    types = pa.types
    if dtype in _INTEGER_LITERALS and isinstance(value, int) and not isinstance(value, bool):
        return _integer(value, column_type)
    if dtype in _FLOAT_LITERALS and isinstance(value, float):
        if dtype == "Float32":
            # The serialised form writes a float32 as its shortest decimal
            # (0.1), not as the float64 Polars compares it as (0.100000001...).
            value = struct.unpack("f", struct.pack("f", value))[0]
            if column_type == pa.float32():
                return pa.scalar(value, column_type)
        return pa.scalar(value, column_type) if column_type == pa.float64() else None
    if dtype == "Boolean" and isinstance(value, bool):
        return pa.scalar(value, column_type) if types.is_boolean(column_type) else None
    if dtype == "String" and isinstance(value, str):
        if types.is_string(column_type) or types.is_large_string(column_type):
            return pa.scalar(value, column_type)
        return None
    if dtype == "Date" and isinstance(value, int):
        return pa.scalar(value, column_type) if types.is_date32(column_type) else None
    if dtype == "Datetime":
        return _timestamp(value, column_type)
    return None


def _integer(value: int, column_type: pa.DataType) -> pa.Scalar | None:
    """An integer literal as an exact scalar of a numeric column's type (Polars compares exactly)."""
    if pa.types.is_integer(column_type):
        return pa.scalar(value, column_type)  # raises out of the column's range
    if column_type == pa.float64() and abs(value) <= _FLOAT64_EXACT:
        return pa.scalar(float(value), column_type)
    if column_type == pa.float32() and abs(value) <= _FLOAT32_EXACT:
        return pa.scalar(float(value), column_type)
    return None


def _timestamp(value: Any, column_type: pa.DataType) -> pa.Scalar | None:
    """A Polars datetime literal ``[ticks, unit, zone]`` against a timestamp column of its unit and zone."""
    ticks, unit, zone = value
    zone_name = zone.get("inner") if isinstance(zone, dict) else zone
    if (
        not pa.types.is_timestamp(column_type)
        or not isinstance(ticks, int)
        or column_type.unit != _TIME_UNITS[unit]
        or column_type.tz != zone_name
    ):
        # Polars casts the literal to the column's unit (truncating), and
        # refuses to compare different zones.
        return None
    return pa.scalar(ticks, column_type)


def _function(body: dict[str, Any], schema: pa.Schema) -> Node:
    inputs = body.get("input")
    function = body.get("function")
    if not isinstance(inputs, list) or not isinstance(function, dict):
        raise _NotUnderstood(body)
    boolean = function.get("Boolean")
    if boolean in ("IsNull", "IsNotNull", "Not") and len(inputs) == 1:
        if boolean == "Not":
            return Call("invert", (_predicate(inputs[0], schema),), None)
        kind, argument = _single(inputs[0])
        tested = _column(argument, schema) if kind == "Column" else _predicate(inputs[0], schema)
        return Call("is_null" if boolean == "IsNull" else "is_valid", (tested,), None)
    if isinstance(boolean, dict) and "IsBetween" in boolean and len(inputs) == 3:
        closed = (boolean["IsBetween"] or {}).get("closed")
        if closed in _BETWEEN and _single(inputs[0])[0] == "Column":
            low, high = _BETWEEN[closed]
            return Call(
                "and_kleene",
                (
                    _comparison(low, inputs[0], inputs[1], schema),
                    _comparison(high, inputs[0], inputs[2], schema),
                ),
                None,
            )
    raise _NotUnderstood(body)
