"""Which batches a pyarrow filter expression may keep, told from batch statistics alone.

An engine that pushes a filter into :func:`batchcorder.dataset` hands it over
as a ``pyarrow.compute.Expression``. :func:`select_batches` reads the
expression's tree and, for every batch, decides from the batch's statistics
(:mod:`batchcorder._statistics`) whether

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
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcorder._statistics import BatchStatistics, ColumnStatistics

__all__ = ["RowFilter", "Selection", "decode", "select_batches"]


# -- the expression tree ---------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    """A top-level column, by name."""

    name: str


@dataclass(frozen=True)
class Literal:
    """A scalar, of its own exact type."""

    value: pa.Scalar


@dataclass(frozen=True)
class Call:
    """A compute function applied to arguments, with its options as a struct scalar."""

    function: str
    arguments: tuple[Node, ...]
    options: pa.StructScalar | None


Node = FieldRef | Literal | Call


class _ArrowSchema(ctypes.Structure):
    """The Arrow C data interface's ``struct ArrowSchema``."""

    _fields_ = [
        ("format", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("metadata", ctypes.c_void_p),
        ("flags", ctypes.c_int64),
        ("n_children", ctypes.c_int64),
        ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)


def _metadata_pairs(schema: pa.Schema) -> list[tuple[bytes, bytes]]:
    """The key-value metadata of ``schema`` in order, repeated keys included.

    ``Schema.metadata`` is a dict, which keeps one value per key; the Arrow C
    data interface keeps them all, in order.
    """
    capsule = schema.__arrow_c_schema__()
    exported = _ArrowSchema.from_address(_capsule_pointer(capsule, b"arrow_schema"))
    address = exported.metadata
    if not address:
        return []
    (count,) = struct.unpack("=i", ctypes.string_at(address, 4))
    offset = 4
    pairs = []
    for _ in range(count):
        item = []
        for _ in range(2):
            (length,) = struct.unpack("=i", ctypes.string_at(address + offset, 4))
            item.append(ctypes.string_at(address + offset + 4, length))
            offset += 4 + length
        pairs.append((item[0], item[1]))
    return pairs


class _Unreadable(Exception):
    """The serialised expression holds something this reader does not know."""


def decode(expression: pc.Expression) -> Node | None:
    """The tree of ``expression``; None if it cannot be read.

    pyarrow serialises an expression (to pickle it) as an Arrow IPC file of
    one row: the tree, in prefix order, is the schema's metadata (``call``,
    ``field_ref``, ``literal``, ``options``, ``end``) and every literal and
    options value is a column, with its exact type.

    Examples
    --------
    >>> import pyarrow.dataset as ds
    >>> decode(ds.field("x") < 3)
    Call(function='less', arguments=(FieldRef(name='x'), Literal(value=<pyarrow.Int64Scalar: 3>)), options=None)
    """
    try:
        _, (serialised,) = expression.__reduce__()
        table = pa.ipc.open_file(serialised).read_all()
        pairs = _metadata_pairs(table.schema)
        position, node = _node(pairs, 0, table)
    except (_Unreadable, pa.ArrowException, ValueError, TypeError, IndexError, struct.error):
        return None
    return node if position == len(pairs) else None


def _node(pairs: list[tuple[bytes, bytes]], position: int, table: pa.Table) -> tuple[int, Node]:
    """The node starting at ``pairs[position]`` and the position after it."""
    key, value = pairs[position]
    if key == b"literal":
        return position + 1, Literal(table.column(int(value))[0])
    if key == b"field_ref":
        return position + 1, FieldRef(value.decode())
    if key != b"call":
        raise _Unreadable(key)
    function = value.decode()
    arguments: list[Node] = []
    options = None
    position += 1
    while True:
        key, value = pairs[position]
        if key == b"end":
            return position + 1, Call(function, tuple(arguments), options)
        if key == b"options":
            options = table.column(int(value))[0]
            position += 1
            continue
        position, argument = _node(pairs, position, table)
        arguments.append(argument)


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


_FLIPPED = {
    "equal": "equal",
    "not_equal": "not_equal",
    "less": "greater",
    "less_equal": "greater_equal",
    "greater": "less",
    "greater_equal": "less_equal",
}

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
            left, right, function = right, left, _FLIPPED[function]
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

        def holds(tests: _BoundTests) -> np.ndarray:
            combine, checks = tests
            results = []
            for bound, name in checks:
                array = stats.low if bound == "low" else stats.high
                # Where the bound is unknown (null), anything may hold.
                result = pc.call_function(name, [array, literal]).fill_null(True)
                results.append(np.asarray(result.to_numpy(zero_copy_only=False), dtype=bool))
            return (
                np.logical_and.reduce(results)
                if combine == "all"
                else np.logical_or.reduce(results)
            )

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
        kind = _kind(stats.value_type)
        if kind is None or kind != _kind(value_set.type):
            return self.anything()
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
    **{name: _Evaluator._comparison for name in _FLIPPED},
    "and": _Evaluator._and,
    "and_kleene": _Evaluator._and,
    "or": _Evaluator._or,
    "or_kleene": _Evaluator._or,
    "invert": _Evaluator._invert,
    "if_else": _Evaluator._if_else,
    "is_in": _Evaluator._is_in,
    "is_null": _Evaluator._is_null,
    "is_valid": _Evaluator._is_valid,
}


def select_batches(
    node: Node, batches: Sequence[pa.RecordBatch], statistics: BatchStatistics
) -> Selection:
    """Which of ``batches`` a filter (decoded by :func:`decode`) may keep, and which it keeps whole.

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
    >>> batches = pa.table({"x": [1, 2, 3, 4, None, 6]}).to_batches(max_chunksize=2)
    >>> chosen = select_batches(decode(ds.field("x") >= 3), batches, BatchStatistics())
    >>> chosen.keep.tolist(), chosen.whole.tolist()
    ([False, True, True], [False, True, False])
    """
    outcomes = _Evaluator(batches, statistics).evaluate(node)
    keep = outcomes.true
    return Selection(keep=keep, whole=keep & ~outcomes.false & ~outcomes.null)


# -- evaluating a filter on one batch ----------------------------------------------

#: Functions :class:`RowFilter` evaluates itself; anything else goes to pyarrow's scanner.
_DIRECT = frozenset(
    {*_FLIPPED, "and", "and_kleene", "or", "or_kleene", "invert", "if_else", "is_in"}
    | {"is_null", "is_valid"}
)


def _function_options(options: pa.StructScalar) -> pc.FunctionOptions:
    """The options object of a decoded call, read back as pyarrow serialises options.

    pyarrow writes options as a one-row IPC file of this struct (with its
    ``_type_name``); ``FunctionOptions.deserialize`` reads that file.
    """
    table = pa.table([pa.repeat(options, 1)], names=[""])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return pc.FunctionOptions.deserialize(sink.getvalue())


class RowFilter:
    """A decoded filter evaluated on one batch at a time with pyarrow's compute functions.

    The expression's own functions, options and literals are called with
    ``pyarrow.compute.call_function``, which casts arguments as binding the
    expression does. Only comparisons, boolean logic, ``if_else``, ``is_in``,
    ``is_null`` and ``is_valid`` are evaluated here (:attr:`supported`);
    others are left to pyarrow's scanner.

    Parameters
    ----------
    node : Node
        The filter's tree.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import pyarrow.dataset as ds
    >>> batch = pa.record_batch({"x": [1, 5, None, 9]})
    >>> rows = RowFilter(decode((ds.field("x") > 2) & ds.field("x").isin([5, 9])))
    >>> rows.supported, rows.apply(batch, batch).column("x").to_pylist()
    (True, [5, 9])
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        self._options: dict[int, pc.FunctionOptions | None] = {}
        self.supported = self._prepare(node)

    def _prepare(self, node: Node) -> bool:
        if not isinstance(node, Call):
            return True
        if node.function not in _DIRECT:
            return False
        try:
            options = None if node.options is None else _function_options(node.options)
        except (pa.ArrowException, ValueError, TypeError):
            return False
        self._options[id(node)] = options
        return all(self._prepare(argument) for argument in node.arguments)

    def _evaluate(self, node: Node, batch: pa.RecordBatch) -> pa.Array | pa.Scalar:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, FieldRef):
            index = batch.schema.get_field_index(node.name)
            if index < 0:
                raise KeyError(node.name)
            return batch.column(index)
        arguments = [self._evaluate(argument, batch) for argument in node.arguments]
        return pc.call_function(node.function, arguments, self._options[id(node)])

    def apply(self, batch: pa.RecordBatch, projected: pa.RecordBatch) -> pa.RecordBatch:
        """The rows of ``projected`` (columns of ``batch``) where the filter is true.

        Parameters
        ----------
        batch : pyarrow.RecordBatch
            The batch the filter reads.
        projected : pyarrow.RecordBatch
            The columns to return, of the same rows.

        Returns
        -------
        pyarrow.RecordBatch
        """
        mask = self._evaluate(self._node, batch)
        if isinstance(mask, pa.Scalar):
            return projected if mask.as_py() is True else projected.slice(0, 0)
        if mask.null_count == 0 and mask.true_count == len(mask):
            return projected  # every row passes: nothing to copy
        # Rows where the filter is null are dropped, as a scan's filter drops them.
        return projected.filter(mask, null_selection_behavior="drop")
