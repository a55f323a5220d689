"""A Polars predicate as a tree batch statistics can judge: which batches it may keep.

Polars hands an IO source its pushed-down predicate as a ``polars.Expr``.
:func:`predicate_node` reads the expression's serialised form and rewrites
the parts whose meaning batch bounds can judge into the tree of
:mod:`batchcorder._pruning`: comparisons of a column with a literal, ``&``,
``|``, ``~``, ``is_null``, ``is_not_null``, ``is_between``, a boolean column or
literal. Anything else becomes a node whose outcome is unknown ("any row may
pass"), so the rest of the predicate can still skip batches.

Polars' meaning must be kept, not pyarrow's, where they differ:

- Polars orders NaN above every number and equal to itself; IEEE comparisons
  (pyarrow's, used on the bounds) do not. A batch holding NaN has no bounds
  (:mod:`batchcorder._statistics`), and a NaN or infinite literal (which the
  serialised form writes as null) is unknown.
- A dictionary column is a Polars ``Categorical``, whose order need not be
  its values' byte order: comparisons on it are unknown.

The serialised form is Polars' own and may change between Polars versions;
what cannot be read is unknown, and then no batch is skipped.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batchcorder._pruning import Call, FieldRef, Literal

if TYPE_CHECKING:
    import polars as pl

    from batchcorder._pruning import Node

__all__ = ["predicate_node"]

#: A node whose outcome is unknown: no statistics judge it.
UNKNOWN = Call("unknown", (), None)

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

#: Polars literal dtype -> the Arrow type of its value.
_SCALAR_TYPES = {
    "Boolean": pa.bool_(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "String": pa.string(),
    "Date": pa.date32(),
}
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


def predicate_node(predicate: pl.Expr, schema: pa.Schema) -> Node | None:
    """The tree of ``predicate`` for :func:`batchcorder._pruning.select_batches`; None if unreadable.

    Parameters
    ----------
    predicate : polars.Expr
        The predicate Polars pushed into the scan.
    schema : pyarrow.Schema
        The cache's schema.

    Returns
    -------
    Node or None

    Examples
    --------
    >>> import polars as pl
    >>> import pyarrow as pa
    >>> schema = pa.schema([("x", pa.int64())])
    >>> predicate_node((pl.col("x") > pl.lit(3, pl.Int64)) & pl.col("x").is_not_null(), schema)
    Call(function='and_kleene', arguments=(Call(function='greater', arguments=(FieldRef(name='x'), Literal(value=<pyarrow.Int64Scalar: 3>)), options=None), Call(function='is_valid', arguments=(FieldRef(name='x'),), options=None)), options=None)
    """
    try:
        tree = json.loads(predicate.meta.serialize(format="json"))
    except Exception:  # an expression Polars cannot serialise, or another format
        return None
    return _node(tree, schema)


def _node(tree: Any, schema: pa.Schema) -> Node:
    if not isinstance(tree, dict) or len(tree) != 1:
        return UNKNOWN
    ((kind, body),) = tree.items()
    if kind == "Column":
        return _column(body, schema)
    if kind == "Literal":
        return _literal(body)
    if kind == "BinaryExpr" and isinstance(body, dict):
        return _binary(body, schema)
    if kind == "Function" and isinstance(body, dict):
        return _function(body, schema)
    return UNKNOWN


def _column(name: Any, schema: pa.Schema) -> Node:
    if not isinstance(name, str) or schema.get_field_index(name) < 0:
        return UNKNOWN
    if pa.types.is_dictionary(schema.field(name).type):
        return UNKNOWN  # a Categorical in Polars, ordered its own way
    return FieldRef(name)


def _literal(body: Any) -> Node:
    if (
        not isinstance(body, dict)
        or set(body) != {"Scalar"}
        or not isinstance(body["Scalar"], dict)
    ):
        return UNKNOWN
    scalar = body["Scalar"]
    if len(scalar) != 1:
        return UNKNOWN
    ((dtype, value),) = scalar.items()
    if value is None:
        # A null, or a float JSON cannot write (NaN, an infinity).
        return UNKNOWN
    try:
        if dtype == "Datetime":
            ticks, unit, zone = value
            zone_name = zone.get("inner") if isinstance(zone, dict) else zone
            return Literal(pa.scalar(ticks, pa.timestamp(_TIME_UNITS[unit], tz=zone_name)))
        if dtype in _SCALAR_TYPES:
            return Literal(pa.scalar(value, _SCALAR_TYPES[dtype]))
    except (pa.ArrowException, KeyError, TypeError, ValueError, OverflowError):
        pass
    return UNKNOWN


def _binary(body: dict[str, Any], schema: pa.Schema) -> Node:
    op = body.get("op")
    left, right = _node(body.get("left"), schema), _node(body.get("right"), schema)
    if op in _LOGICAL:
        return Call(_LOGICAL[op], (left, right), None)
    if op in _COMPARISONS:
        right = _dynamic(body.get("right"), left, schema, right)
        left = _dynamic(body.get("left"), right, schema, left)
        return Call(_COMPARISONS[op], (left, right), None)
    return UNKNOWN


def _dynamic(tree: Any, column: Node, schema: pa.Schema, read: Node) -> Node:
    """A literal of no set type (``pl.col("x") > 3``) as Polars types it against ``column``.

    Polars gives a bare Python number the type of the column it meets. Where
    pyarrow compares the number as that typed literal exactly as Polars does,
    the literal gets it; elsewhere (a value out of the column's range, a
    ``Float32`` column and a fraction, temporal columns) it stays unknown.
    ``read`` is what the tree reads as otherwise.
    """
    if not isinstance(column, FieldRef):
        return read
    body = tree.get("Literal") if isinstance(tree, dict) else None
    dynamic = body.get("Dyn") if isinstance(body, dict) else None
    if not isinstance(dynamic, dict) or len(dynamic) != 1:
        return read
    ((kind, value),) = dynamic.items()
    column_type = schema.field(column.name).type
    try:
        if kind == "Int" and isinstance(value, int):
            if pa.types.is_integer(column_type):
                return Literal(pa.scalar(value, column_type))
            if column_type == pa.float64() and abs(value) <= _FLOAT64_EXACT:
                return Literal(pa.scalar(float(value), column_type))
            if column_type == pa.float32() and abs(value) <= _FLOAT32_EXACT:
                return Literal(pa.scalar(float(value), column_type))
        if kind == "Float" and isinstance(value, float) and column_type == pa.float64():
            return Literal(pa.scalar(value, column_type))
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        pass  # out of the column's range: Polars widens, which is not judged here
    return UNKNOWN


def _function(body: dict[str, Any], schema: pa.Schema) -> Node:
    inputs = body.get("input")
    function = body.get("function")
    if not isinstance(inputs, list) or not isinstance(function, dict):
        return UNKNOWN
    boolean = function.get("Boolean")
    arguments = [_node(item, schema) for item in inputs]
    if boolean == "IsNull" and len(arguments) == 1:
        return Call("is_null", (arguments[0],), None)
    if boolean == "IsNotNull" and len(arguments) == 1:
        return Call("is_valid", (arguments[0],), None)
    if boolean == "Not" and len(arguments) == 1:
        return Call("invert", (arguments[0],), None)
    if isinstance(boolean, dict) and "IsBetween" in boolean and len(arguments) == 3:
        closed = (boolean["IsBetween"] or {}).get("closed")
        if closed in _BETWEEN:
            low, high = _BETWEEN[closed]
            value, lower, upper = arguments
            lower = _dynamic(inputs[1], value, schema, lower)
            upper = _dynamic(inputs[2], value, schema, upper)
            return Call(
                "and_kleene",
                (Call(low, (value, lower), None), Call(high, (value, upper), None)),
                None,
            )
    return UNKNOWN
