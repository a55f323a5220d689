"""The tree of a filter expression, as the scan layer reads it.

:func:`batchcorder._scan.arrow_format.decode` reads a
``pyarrow.compute.Expression`` into these nodes;
:mod:`batchcorder._scan.predicates` judges them against batch statistics and
:mod:`batchcorder._scan.engine_semantics` rewrites them. A Polars predicate
is translated into the same nodes by the Polars adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

__all__ = ["MIRRORED", "Call", "FieldRef", "Literal", "Node", "empty_batch"]


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

#: Each comparison function with its sides swapped: ``a < b`` is ``b > a``.
MIRRORED = {
    "equal": "equal",
    "not_equal": "not_equal",
    "less": "greater",
    "less_equal": "greater_equal",
    "greater": "less",
    "greater_equal": "less_equal",
}


def field_names(node: Node) -> set[str]:
    """The columns ``node`` reads.

    Examples
    --------
    >>> sorted(field_names(Call("and", (FieldRef("x"), FieldRef("y")), None)))
    ['x', 'y']
    """
    if isinstance(node, FieldRef):
        return {node.name}
    if isinstance(node, Literal):
        return set()
    return set().union(*(field_names(argument) for argument in node.arguments))


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch of ``schema`` holding no row (``from_pylist`` cannot build every type).

    Examples
    --------
    >>> import pyarrow as pa
    >>> empty_batch(pa.schema([("d", pa.dictionary(pa.int32(), pa.decimal128(5, 2)))])).num_rows
    0
    """
    return pa.RecordBatch.from_arrays([pa.nulls(0, field.type) for field in schema], schema=schema)
