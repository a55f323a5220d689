"""Filters rewritten to answer as DuckDB, DataFusion or Polars would: NaN, zeros, ``is_in`` nulls.

pyarrow compares floats as IEEE 754 says: NaN is neither below, above nor
equal to anything, itself included. DuckDB, DataFusion and Polars order NaN
above every number (infinity included) and take NaN to equal NaN; all four
take ``-0.0`` to equal ``0.0`` in comparisons. In a value set, pyarrow's
``is_in`` tells the zeros apart, and so does DataFusion's ``IN`` of four
values or more, the one it pushes as ``is_in`` (shorter lists it pushes as
``=`` ... ``OR``); DuckDB's and Polars' do not. pyarrow's ``is_in`` (as the
engines push it, nulls matching) is false for a null, the engines' is null,
so ``NOT IN`` keeps the null rows; and where the value set holds a null,
SQL's ``IN`` is null for a value matching nothing, pyarrow's and Polars'
false. DuckDB and Polars do not filter again the rows a pyarrow dataset
returns for a filter they pushed into the scan; DataFusion does, but cannot
bring back a row the dataset dropped. So a dataset handed to an engine
applies :func:`engine_order` to every filter it is given: the rewritten
filter answers, under pyarrow's rules, what the engine's own filter answers.

For a comparison where either side is floating point (``nan(v)``: ``v`` is
NaN; ``valid``: neither side is null, so a null still gives null)::

    a == b  ->  (a == b) or (valid and nan(a) and nan(b))
    a != b  ->  (a != b) and not (valid and nan(a) and nan(b))
    a <  b  ->  (a <  b) or (valid and not nan(a) and nan(b))
    a <= b  ->  (a <= b) or (valid and nan(b))
    a >  b  ->  (a >  b) or (valid and nan(a) and not nan(b))
    a >= b  ->  (a >= b) or (valid and nan(a))

and ``is_in(x, values)`` (nulls matching) becomes ``if_else(is_valid(x),
is_in(x, values), null)``, or for SQL with a null among the values
``is_in(x, non-null values) or null``; over a floating-point column whose
value set holds a zero, it also keeps the other zero, except for DataFusion.
DataFusion compares a ``dictionary<float64>`` column with a float64 value by
IEEE 754's total order (``-0.0`` below ``0.0``): there, a comparison with a
zero also tells the zeros apart (``1 / x`` gives the sign of a zero ``x``).
Parts known from a literal are folded, so
``x > 0.5`` becomes ``(x > 0.5) or (is_valid(x) and is_nan(x))``, which batch
statistics still prune (:mod:`batchcorder._scan.predicates` knows ``is_nan``).
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from batchcorder._scan.arrow_format import decode, to_expression
from batchcorder._scan.tree import MIRRORED, Call, FieldRef, Literal, Node, empty_batch

__all__ = ["engine_order"]

#: A part of a rewritten filter: a node, or a value known without data.
_Term = Node | bool


#: The engines whose meaning :func:`engine_order` gives a filter.
DIALECTS = ("polars", "duckdb", "datafusion")


def engine_order(
    filter: pc.Expression, schema: pa.Schema, *, dialect: str = "polars"
) -> pc.Expression:
    """``filter`` rewritten so that pyarrow answers it as ``dialect``'s engine does.

    Parameters
    ----------
    filter : pyarrow.compute.Expression
        A filter an engine pushed into a dataset of ``schema``.
    schema : pyarrow.Schema
        The dataset's schema.
    dialect : {"polars", "duckdb", "datafusion"}, default "polars"
        The engine.

    Returns
    -------
    pyarrow.compute.Expression
        ``filter`` itself when it compares no floating-point value and
        has no ``is_in``.

    Raises
    ------
    ValueError
        If the filter cannot be read and the schema holds floating-point
        values: pyarrow's answer could differ from the engine's.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> schema = pa.schema([("x", pa.float64()), ("i", pa.int64())])
    >>> print(engine_order(ds.field("x") > 0.5, schema))
    ((x > 0.5) or (is_valid(x) and is_nan(x)))
    >>> print(engine_order(ds.field("i") > 1, schema))
    (i > 1)
    >>> table = pa.table({"x": [float("nan"), 1.0, None], "i": [1, 2, 3]})
    >>> table.filter(engine_order(ds.field("x") > 0.5, schema))["i"].to_pylist()
    [1, 2]
    """
    node = decode(filter)
    if node is None:
        if _holds_floats(schema):
            raise ValueError(
                f"cannot read the filter {filter} to compare NaN as the engine does "
                "(NaN above every number and equal to itself); use batchcorder.dataset(cache) "
                "for pyarrow's comparisons"
            )
        return filter
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    rewritten = _Rewriter(schema, dialect).rewrite(node)
    return filter if rewritten == node else to_expression(rewritten)


def _holds_floats(schema: pa.Schema) -> bool:
    """Whether some field of ``schema``, at any depth, holds floating-point values."""

    def floats(data_type: pa.DataType) -> bool:
        if pa.types.is_floating(data_type):
            return True
        if pa.types.is_dictionary(data_type):
            return floats(data_type.value_type)
        return any(floats(data_type.field(i).type) for i in range(data_type.num_fields))

    return any(floats(field.type) for field in schema)


_COMPARISONS = frozenset({"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"})


class _Rewriter:
    """Rewrites the comparisons of a tree over data of ``schema``."""

    def __init__(self, schema: pa.Schema, dialect: str) -> None:
        self._dialect = dialect
        self._schema = schema
        self._empty = empty_batch(schema)

    def rewrite(self, node: Node) -> Node:
        if not isinstance(node, Call):
            return node
        arguments = tuple(self.rewrite(argument) for argument in node.arguments)
        call = Call(node.function, arguments, node.options)
        if node.function in _COMPARISONS and len(arguments) == 2:
            return self._comparison(call)
        if node.function == "is_in" and len(arguments) == 1:
            return self._is_in(call)
        return call

    def type_of(self, node: Node) -> pa.DataType | None:
        """The type of ``node``'s values (a dictionary's value type); None if it cannot be told."""
        if isinstance(node, Literal):
            data_type = node.value.type
        elif isinstance(node, FieldRef):
            if self._schema.get_field_index(node.name) < 0:
                return None
            data_type = self._schema.field(node.name).type
        else:
            # The type a computed side has: its projection over no rows.
            try:
                scan = ds.InMemoryDataset([self._empty], schema=self._schema)
                table = scan.to_table(columns={"v": to_expression(node)})
            except (pa.ArrowException, ValueError, TypeError):
                return None
            data_type = table.schema.field(0).type
        return data_type.value_type if pa.types.is_dictionary(data_type) else data_type

    def _comparison(self, call: Call) -> Node:
        rewritten = self._nan_comparison(call)
        signed = self._signed_zero(call)
        if signed is None:
            return rewritten
        function, column, negative = signed
        # IEEE 754 takes the zeros as equal; the total order puts -0.0 first.
        minus, plus = _zero(column, -1.0), _zero(column, 1.0)
        other = plus if negative else minus
        valid = _valid(column)
        if function == "equal":
            return _node(_all(rewritten, _not(other)))
        if function == "not_equal":
            return _node(_any(rewritten, _all(valid, other)))
        if function == "less" and not negative:
            return _node(_any(rewritten, _all(valid, minus)))
        if function == "less_equal" and negative:
            return _node(_all(rewritten, _not(plus)))
        if function == "greater" and negative:
            return _node(_any(rewritten, _all(valid, plus)))
        if function == "greater_equal" and not negative:
            return _node(_all(rewritten, _not(minus)))
        return rewritten

    def _nan_comparison(self, call: Call) -> Node:
        left, right = call.arguments
        left_type, right_type = self.type_of(left), self.type_of(right)
        if left_type is None or right_type is None:
            return call
        if not (pa.types.is_floating(left_type) or pa.types.is_floating(right_type)):
            return call
        valid = (_valid(left), _valid(right))
        nan_left, nan_right = self._nan(left, left_type), self._nan(right, right_type)
        function = call.function
        if function == "equal":
            return _node(_any(call, _all(*valid, nan_left, nan_right)))
        if function == "not_equal":
            return _node(_all(call, _not(_all(*valid, nan_left, nan_right))))
        extra = {
            "less": (_not(nan_left), nan_right),
            "less_equal": (nan_right,),
            "greater": (nan_left, _not(nan_right)),
            "greater_equal": (nan_left,),
        }[function]
        return _node(_any(call, _all(*valid, *extra)))

    def _signed_zero(self, call: Call) -> tuple[str, Node, bool] | None:
        """(comparison with the column first, column, whether the zero is -0.0) where
        ``call`` compares a ``dictionary<float64>`` column with a literal zero in
        DataFusion, which compares such a column by IEEE 754's total order: ``-0.0``
        below ``0.0``; None otherwise."""
        if self._dialect != "datafusion":
            return None
        left, right = call.arguments
        function = call.function
        if isinstance(left, Literal):
            left, right, function = right, left, MIRRORED[function]
        if not (isinstance(left, FieldRef) and isinstance(right, Literal)):
            return None
        if self._schema.get_field_index(left.name) < 0:
            return None
        column_type = self._schema.field(left.name).type
        value = right.value
        value_type = value.type.value_type if pa.types.is_dictionary(value.type) else value.type
        if not (
            pa.types.is_dictionary(column_type)
            and column_type.value_type == pa.float64()
            and value_type == pa.float64()
            and value.is_valid
            and value.as_py() == 0
        ):
            return None
        return function, left, math.copysign(1.0, value.as_py()) < 0

    def _nan(self, side: Node, value_type: pa.DataType) -> _Term:
        """Whether ``side`` is NaN: a node, or a value known now."""
        if not pa.types.is_floating(value_type):
            return False
        if isinstance(side, Literal):
            value = side.value.as_py()
            return value is not None and math.isnan(value)
        if isinstance(side, FieldRef):
            data_type = self._schema.field(side.name).type
            if pa.types.is_dictionary(data_type):
                # is_nan takes no dictionary; NaN is the one value unequal to itself.
                return Call("not_equal", (side, side), None)
        return Call("is_nan", (side,), None)

    def _is_in(self, call: Call) -> Node:
        (column,) = call.arguments
        options = call.options
        if options is None or options["value_set"].values is None:
            return call
        if options["null_matching_behavior"].as_py() != 0:  # only MATCH, as engines push it
            return call
        value_set = options["value_set"].values
        null = Literal(pa.scalar(None, pa.bool_()))
        if self._dialect != "polars" and value_set.null_count:
            # SQL: null for a value matching none of the others (and for a null).
            matched = _is_in_call(column, value_set.drop_null())
            rewritten: Node = Call("or_kleene", (matched, null), None)
        else:
            rewritten = Call("if_else", (Call("is_valid", (column,), None), call, null), None)
        column_type = self.type_of(column)
        zero = any(isinstance(value, float) and value == 0 for value in value_set.to_pylist())
        if (
            column_type is not None
            and pa.types.is_floating(column_type)
            and zero
            and self._dialect != "datafusion"
        ):
            # pyarrow's is_in tells -0.0 from 0.0; DuckDB's and Polars' do not.
            equal = Call("equal", (column, Literal(pa.scalar(0.0, column_type))), None)
            rewritten = _node(_any(rewritten, _all(_valid(column), equal)))
        return rewritten


def _zero(column: Node, sign: float) -> Node:
    """Whether ``column`` is the zero of ``sign``: it equals 0, and 1 / it has that sign."""
    zero = Literal(pa.scalar(0.0))
    reciprocal = Call("divide", (Literal(pa.scalar(1.0)), column), None)
    side = Call("less" if sign < 0 else "greater", (reciprocal, zero), None)
    return Call("and_kleene", (Call("equal", (column, zero), None), side), None)


def _is_in_call(column: Node, value_set: pa.Array) -> Call:
    """``is_in(column, value_set)``, nulls matching, as pyarrow serialises it."""
    template = decode(pc.field("_").isin(value_set))
    assert isinstance(template, Call)
    return Call("is_in", (column,), template.options)


def _valid(side: Node) -> _Term:
    if isinstance(side, Literal):
        return bool(side.value.is_valid)
    return Call("is_valid", (side,), None)


def _all(*terms: _Term) -> _Term:
    """``and_kleene`` of ``terms``, folding the known ones."""
    return _connect("and_kleene", False, terms)


def _any(*terms: _Term) -> _Term:
    """``or_kleene`` of ``terms``, folding the known ones."""
    return _connect("or_kleene", True, terms)


def _connect(function: str, absorbing: bool, terms: tuple[_Term, ...]) -> _Term:
    """``function`` over ``terms``: ``absorbing`` if one term is it; the other constant drops out."""
    if any(term is absorbing for term in terms):
        return absorbing
    nodes = [term for term in terms if not isinstance(term, bool)]
    if not nodes:
        return not absorbing
    result = nodes[0]
    for node in nodes[1:]:
        result = Call(function, (result, node), None)
    return result


def _not(term: _Term) -> _Term:
    return (not term) if isinstance(term, bool) else Call("invert", (term,), None)


def _node(term: _Term) -> Node:
    return Literal(pa.scalar(term)) if isinstance(term, bool) else term
