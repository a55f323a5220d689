"""Which batches a pyarrow filter expression may keep, told from batch statistics alone.

An engine that pushes a filter into :func:`batchcorder.dataset` hands it over
as a ``pyarrow.compute.Expression``. :func:`select_batches` reads the
expression's tree and, for every batch, decides from the batch's statistics
(:mod:`batchcorder._scan.statistics`) whether

- no row can pass (the batch is skipped),
- every row passes (the batch is taken whole, unfiltered), or
- some rows may pass (the batch is filtered as before).

Each node of the tree gives, per batch, three "may" answers: may some row
make it true, false, null. The answers over-approximate (an unknown function,
a column without bounds, a cast: "anything may happen"), so a batch is
skipped only when no row can make the filter true, and taken whole only when
no row can make it false or null. Comparisons against the bounds run the
same compute function the filter runs, so nulls, NaN, time zones, string
byte order and dictionary values are treated as the filter treats them.

A batch that is skipped or taken whole never runs the filter, so a filter
that could raise on some batch's data would raise over the plain data and
not here. Batches are told apart only when no node of the filter can raise
on data (:func:`cannot_raise`): field references, literals, comparisons
whose implicit casts always succeed, boolean logic, ``is_null``,
``is_valid``, ``is_nan``, ``is_in`` whose value set casts to the column's
type, ``if_else``. Any other function (a cast, arithmetic, a string
function, anything unknown) keeps every batch, to be filtered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcorder._scan.statistics import BatchStatistics, ColumnStatistics
from batchcorder._scan.tree import MIRRORED, Call, FieldRef, Literal, Node

__all__ = ["Selection", "cannot_raise", "select_batches"]


# -- which filters may skip batches -------------------------------------------------

_COMPARISONS = frozenset({"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"})
_LOGIC = frozenset({"and", "and_kleene", "or", "or_kleene", "invert"})


def cannot_raise(node: Node, schema: pa.Schema) -> bool:
    """Whether evaluating ``node`` on data of ``schema`` can only fail as on no data.

    Errors that do not depend on the data (an unknown column, types a
    function does not take) are raised as well by the filter over an empty
    batch of the schema; this tells whether some data could make the filter
    raise where other data does not. Functions not listed in the module's
    docstring, and comparisons or ``is_in`` that cast values in a way that
    may fail (``uint64`` against ``int64``, ``int64`` against a float, a
    coarser timestamp unit against a finer one), can.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> from batchcorder._scan.arrow_format import decode
    >>> schema = pa.schema([("x", pa.int64()), ("s", pa.string())])
    >>> cannot_raise(decode((ds.field("x") > 3) | ds.field("s").isin(["a"])), schema)
    True
    >>> cannot_raise(decode(ds.field("s").cast(pa.int64()) > 3), schema)
    False
    >>> cannot_raise(decode(ds.field("x") > 1.5), schema)  # int64 to float64 checks each value
    False
    """
    return _safe_type(node, schema) is not None


def _decoded(data_type: pa.DataType) -> pa.DataType:
    """The value type of a dictionary type (compute functions decode dictionaries), else itself."""
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _safe_type(node: Node, schema: pa.Schema) -> pa.DataType | None:
    """The type of ``node``'s values if evaluating it cannot fail on data; None if it may."""
    if isinstance(node, Literal):
        return node.value.type
    if isinstance(node, FieldRef):
        if schema.get_all_field_indices(node.name) != [schema.get_field_index(node.name)]:
            return None
        return schema.field(node.name).type
    types = [_safe_type(argument, schema) for argument in node.arguments]
    if any(data_type is None for data_type in types):
        return None
    return _safe_call_type(node, types)


def _safe_call_type(node: Call, types: list[pa.DataType]) -> pa.DataType | None:
    """The type of a call of ``node.function`` on arguments of ``types`` if it cannot fail on data."""
    function = node.function
    if function in _COMPARISONS:
        return pa.bool_() if len(types) == 2 and _compare_without_failing(*types) else None
    if function in _LOGIC:
        return pa.bool_() if types and all(map(_boolean_or_null, types)) else None
    if function in {"is_null", "is_valid"} and len(types) == 1:
        return pa.bool_()
    if function == "is_nan" and len(types) == 1:
        numeric = pa.types.is_floating(types[0]) or pa.types.is_integer(types[0])
        return pa.bool_() if numeric else None
    if function == "is_in" and len(types) == 1 and node.options is not None:
        value_set = node.options["value_set"].values
        return pa.bool_() if _value_set_casts(value_set, _decoded(types[0])) else None
    if function == "if_else" and len(types) == 3 and _boolean_or_null(types[0]):
        then, otherwise = types[1], types[2]
        if pa.types.is_null(then) or then.equals(otherwise):
            return otherwise
        return then if pa.types.is_null(otherwise) else None
    return None


def _boolean_or_null(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_boolean(data_type) or pa.types.is_null(data_type))


def _value_set_casts(value_set: pa.Array | None, column_type: pa.DataType) -> bool:
    """Whether ``is_in`` meets its value set in the column's own type.

    pyarrow casts the value set to the column's type; where that cast fails
    it casts the column to the value set's type instead, value by value,
    which may fail on some values.
    """
    if value_set is None:
        return False
    if value_set.type.equals(column_type):
        return True
    try:
        value_set.cast(column_type)
    except (pa.ArrowException, ValueError, TypeError):
        return False
    return True


def _integer_bits(data_type: pa.DataType) -> int:
    return int(data_type.bit_width)


def _compare_without_failing(left: pa.DataType, right: pa.DataType) -> bool:
    """Whether comparing values of these types casts them only in ways that cannot fail.

    Mixed types are compared in a common type; casting to it checks every
    value (range, lost precision, a finer time unit) unless it widens
    losslessly, as the pairs accepted here do.
    """
    left, right = _decoded(left), _decoded(right)
    if pa.types.is_null(left) or pa.types.is_null(right) or left.equals(right):
        return True
    return _widens(left, right) or _widens(right, left)


#: Type pairs (a, b) compared in a common type both cast to losslessly.
_TEXT_PAIRS = {
    (pa.string(), pa.large_string()),
    (pa.binary(), pa.large_binary()),
    (pa.date32(), pa.date64()),
}


def _widens(narrow: pa.DataType, wide: pa.DataType) -> bool:
    """Whether ``narrow`` against ``wide`` is compared in a type both cast to without a check."""
    types = pa.types
    if (narrow, wide) in _TEXT_PAIRS:
        return True
    if types.is_integer(narrow) and types.is_integer(wide):
        if types.is_signed_integer(narrow) == types.is_signed_integer(wide):
            return True
        # Unsigned against signed: a signed type wider than the unsigned one,
        # which uint64 has none of.
        unsigned = narrow if types.is_unsigned_integer(narrow) else wide
        return _integer_bits(unsigned) < 64
    if types.is_integer(narrow) and types.is_floating(wide):
        # Exact in the float's significand: no check can fail.
        bits = _integer_bits(narrow)
        if types.is_float32(wide):
            return bits <= 16
        return types.is_float64(wide) and bits <= 32
    return bool(types.is_float32(narrow) and types.is_float64(wide))


# -- what each batch may hold -----------------------------------------------------


class _Outcomes(NamedTuple):
    """Per batch (bool arrays): whether some row may make a node true, false, null."""

    true: np.ndarray
    false: np.ndarray
    null: np.ndarray


@dataclass(frozen=True)
class Selection:
    """What a filter does with each batch.

    Attributes
    ----------
    keep : numpy.ndarray
        Batch ``i`` may hold a row the filter keeps (bool); the others are skipped.
    whole : numpy.ndarray
        Every row of batch ``i`` passes the filter (bool; a subset of ``keep``).
    """

    keep: np.ndarray
    whole: np.ndarray


#: Tests of the bounds, combined with "all" or "any", for some row to be (true, false).
_BoundTests = tuple[str, tuple[tuple[str, str], ...]]
_BOUND_TESTS: dict[str, tuple[_BoundTests, _BoundTests]] = {
    "equal": (
        ("all", (("low", "less_equal"), ("high", "greater_equal"))),
        ("any", (("low", "not_equal"), ("high", "not_equal"))),
    ),
    "not_equal": (
        ("any", (("low", "not_equal"), ("high", "not_equal"))),
        ("all", (("low", "less_equal"), ("high", "greater_equal"))),
    ),
    "less": (("all", (("low", "less"),)), ("all", (("high", "greater_equal"),))),
    "less_equal": (("all", (("low", "less_equal"),)), ("all", (("high", "greater"),))),
    "greater": (("all", (("high", "greater"),)), ("all", (("low", "less_equal"),))),
    "greater_equal": (("all", (("high", "greater_equal"),)), ("all", (("low", "less"),))),
}

#: Value sets of ``is_in`` larger than this are not looked at.
_MAX_VALUE_SET = 64


def _kind(data_type: pa.DataType) -> str | None:
    """Types of one kind compare through order-preserving implicit casts; None: not bounded."""
    types = pa.types
    if types.is_integer(data_type) or types.is_floating(data_type) or types.is_decimal(data_type):
        return "number"
    if types.is_string(data_type) or types.is_large_string(data_type):
        return "string"
    if types.is_binary(data_type) or types.is_large_binary(data_type):
        return "binary"
    for kind, test in (
        ("fixed_size_binary", types.is_fixed_size_binary),
        ("boolean", types.is_boolean),
        ("timestamp", types.is_timestamp),
        ("date", types.is_date),
        ("time", types.is_time),
        ("duration", types.is_duration),
    ):
        if test(data_type):
            return kind
    return None


class _Evaluator:
    """Evaluates nodes over the statistics of ``batches``."""

    def __init__(
        self,
        batches: Sequence[pa.RecordBatch],
        statistics: BatchStatistics,
    ) -> None:
        self._batches = batches
        self._statistics = statistics
        rows = np.array([batch.num_rows for batch in batches], dtype=np.int64)
        self.present = rows > 0
        self.nothing = np.zeros(len(batches), dtype=bool)

    def anything(self) -> _Outcomes:
        return _Outcomes(self.present, self.present, self.present)

    def column(self, node: Node) -> ColumnStatistics | None:
        if not isinstance(node, FieldRef):
            return None
        return self._statistics.column(node.name, self._batches)

    def evaluate(self, node: Node) -> _Outcomes:
        if isinstance(node, Literal):
            return self._literal(node.value)
        if isinstance(node, FieldRef):
            # A boolean column used as the filter: true where it is true.
            return self._compare("equal", node, Literal(pa.scalar(True)))
        handler = _CALLS.get(node.function)
        if handler is None:
            return self.anything()
        try:
            return handler(self, node)
        except (pa.ArrowException, ValueError, TypeError, IndexError, KeyError):
            return self.anything()

    def _literal(self, value: pa.Scalar) -> _Outcomes:
        if not pa.types.is_boolean(value.type) and not pa.types.is_null(value.type):
            return self.anything()
        flag = value.as_py()
        present, nothing = self.present, self.nothing
        return _Outcomes(
            present if flag is True else nothing,
            present if flag is False else nothing,
            present if flag is None else nothing,
        )

    def _compare(self, function: str, left: Node, right: Node) -> _Outcomes:
        if isinstance(left, Literal) and isinstance(right, FieldRef):
            left, right, function = right, left, MIRRORED[function]
        stats = self.column(left)
        if stats is None or not isinstance(right, Literal):
            return self.anything()
        literal = right.value
        values = stats.may_hold_value & self.present
        nulls = stats.may_hold_null & self.present
        if not literal.is_valid:
            # A comparison with null is null for every row.
            return _Outcomes(self.nothing, self.nothing, values | nulls)
        kind = _kind(stats.value_type)
        if kind is None or kind != _kind(literal.type):
            return self.anything()
        if pa.types.is_floating(literal.type) and math.isnan(literal.as_py()):
            # Every value compares false with NaN (IEEE 754), but for "not equal".
            if function == "not_equal":
                return _Outcomes(values, self.nothing, nulls)
            return _Outcomes(self.nothing, values, nulls)

        def holds(tests: _BoundTests) -> np.ndarray:
            combine, checks = tests
            results = []
            for bound, name in checks:
                array = stats.low if bound == "low" else stats.high
                # Where the bound is unknown (null), anything may hold.
                result = pc.call_function(name, [array, literal]).fill_null(True)
                results.append(np.asarray(result.to_numpy(zero_copy_only=False), dtype=bool))
            held: np.ndarray = (
                np.logical_and.reduce(results)
                if combine == "all"
                else np.logical_or.reduce(results)
            )
            return held

        true_tests, false_tests = _BOUND_TESTS[function]
        true, false = holds(true_tests), holds(false_tests)
        unbounded = ~stats.bounded | stats.may_hold_nan
        return _Outcomes(values & (true | unbounded), values & (false | unbounded), nulls)

    def _is_in(self, node: Call) -> _Outcomes:
        stats = self.column(node.arguments[0]) if len(node.arguments) == 1 else None
        if stats is None or node.options is None:
            return self.anything()
        value_set = node.options["value_set"].values
        if value_set is None or len(value_set) > _MAX_VALUE_SET:
            return self.anything()
        values = stats.may_hold_value & self.present
        nulls = stats.may_hold_null & self.present
        if _kind(stats.value_type) is None or not _value_set_casts(value_set, stats.value_type):
            return self.anything()
        # pyarrow matches the values as cast to the column's type, which may
        # round them (float64 to float32, a float to a decimal's scale): the
        # bounds are compared with what the filter meets, in the column's type.
        value_set = value_set.cast(stats.value_type)
        true = self.nothing.copy()
        for value in value_set.drop_null():
            low = pc.less_equal(stats.low, value).fill_null(True)
            high = pc.greater_equal(stats.high, value).fill_null(True)
            true |= np.asarray(pc.and_(low, high).to_numpy(zero_copy_only=False), dtype=bool)
        unbounded = ~stats.bounded | stats.may_hold_nan
        true = values & (true | unbounded)
        if value_set.null_count:
            true = true | nulls
        return _Outcomes(true, self.present, self.present)

    def _is_null(self, node: Call) -> _Outcomes:
        stats = self.column(node.arguments[0]) if len(node.arguments) == 1 else None
        if stats is None:
            return self.anything()
        nan_is_null = node.options is not None and bool(node.options["nan_is_null"].as_py())
        true = stats.may_hold_null | (nan_is_null & stats.may_hold_nan)
        return _Outcomes(true & self.present, stats.may_hold_value & self.present, self.nothing)

    def _is_nan(self, node: Call) -> _Outcomes:
        if len(node.arguments) != 1:
            return self.anything()
        (argument,) = node.arguments
        if isinstance(argument, Literal):
            value = argument.value
            flag = (
                None
                if not value.is_valid
                else pa.types.is_floating(value.type) and value.as_py() != value.as_py()
            )
            return self._literal(pa.scalar(flag, pa.bool_()))
        stats = self.column(argument)
        if stats is None:
            return self.anything()
        nan = stats.may_hold_nan if pa.types.is_floating(stats.value_type) else self.nothing
        return _Outcomes(
            nan & self.present,
            stats.may_hold_value & self.present,
            stats.may_hold_null & self.present,
        )

    def _is_valid(self, node: Call) -> _Outcomes:
        stats = self.column(node.arguments[0]) if len(node.arguments) == 1 else None
        if stats is None:
            return self.anything()
        return _Outcomes(
            stats.may_hold_value & self.present,
            stats.may_hold_null & self.present,
            self.nothing,
        )

    def _comparison(self, node: Call) -> _Outcomes:
        if len(node.arguments) != 2:
            return self.anything()
        return self._compare(node.function, *node.arguments)

    def _and(self, node: Call) -> _Outcomes:
        parts = [self.evaluate(argument) for argument in node.arguments]
        return _conjunction(parts, kleene=node.function == "and_kleene")

    def _or(self, node: Call) -> _Outcomes:
        # De Morgan: "a or b" is "not (not a and not b)", in Kleene logic too.
        parts = [_negation(self.evaluate(argument)) for argument in node.arguments]
        return _negation(_conjunction(parts, kleene=node.function == "or_kleene"))

    def _invert(self, node: Call) -> _Outcomes:
        if len(node.arguments) != 1:
            return self.anything()
        return _negation(self.evaluate(node.arguments[0]))

    def _if_else(self, node: Call) -> _Outcomes:
        if len(node.arguments) != 3:
            return self.anything()
        condition, then, otherwise = (self.evaluate(argument) for argument in node.arguments)
        return _Outcomes(
            (condition.true & then.true) | (condition.false & otherwise.true),
            (condition.true & then.false) | (condition.false & otherwise.false),
            condition.null | (condition.true & then.null) | (condition.false & otherwise.null),
        )


def _negation(outcomes: _Outcomes) -> _Outcomes:
    """The outcomes of ``invert``: true and false swapped, null kept."""
    return _Outcomes(outcomes.false, outcomes.true, outcomes.null)


def _conjunction(parts: Sequence[_Outcomes], *, kleene: bool) -> _Outcomes:
    """The outcomes of ``and`` over operands whose outcomes are ``parts``.

    ``and_kleene`` when ``kleene`` (a false operand wins over a null one),
    else ``and`` (a null operand makes the result null).
    """
    true, false, null = parts[0]
    for part in parts[1:]:
        if kleene:
            # Null only where one side is null and the other true or null.
            null = (null & (part.true | part.null)) | (part.null & (true | null))
        else:
            null = null | part.null
        true, false = true & part.true, false | part.false
    return _Outcomes(true, false, null)


_CALLS: dict[str, Callable[[_Evaluator, Call], _Outcomes]] = {
    **{name: _Evaluator._comparison for name in MIRRORED},
    "and": _Evaluator._and,
    "and_kleene": _Evaluator._and,
    "or": _Evaluator._or,
    "or_kleene": _Evaluator._or,
    "invert": _Evaluator._invert,
    "if_else": _Evaluator._if_else,
    "is_in": _Evaluator._is_in,
    "is_null": _Evaluator._is_null,
    "is_valid": _Evaluator._is_valid,
    "is_nan": _Evaluator._is_nan,
}


def select_batches(
    node: Node, batches: Sequence[pa.RecordBatch], statistics: BatchStatistics
) -> Selection:
    """Which of ``batches`` a decoded filter may keep, and which it keeps whole.

    The decision is by statistics alone: a caller skipping batches of a
    filter that may raise checks :func:`cannot_raise` first.

    Parameters
    ----------
    node : Node
        The filter's tree.
    batches : sequence of pyarrow.RecordBatch
        The cache's batches from batch 0, in order.
    statistics : BatchStatistics
        Where the batches' statistics are kept (computed for the columns the
        filter reads, if not yet).

    Returns
    -------
    Selection

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> from batchcorder._scan.arrow_format import decode
    >>> batches = pa.table({"x": [1, 2, 3, 4, None, 6]}).to_batches(max_chunksize=2)
    >>> chosen = select_batches(decode(ds.field("x") >= 3), batches, BatchStatistics())
    >>> chosen.keep.tolist(), chosen.whole.tolist()
    ([False, True, True], [False, True, False])
    """
    outcomes = _Evaluator(batches, statistics).evaluate(node)
    keep = outcomes.true
    return Selection(keep=keep, whole=keep & ~outcomes.false & ~outcomes.null)
