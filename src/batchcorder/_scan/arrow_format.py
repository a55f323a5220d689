"""The one module that reads pyarrow's private serialisation of an expression.

pyarrow has no public way to walk an ``Expression``'s tree.
``Expression.to_substrait`` is public, but it is a protobuf message (reading
it needs a Substrait/protobuf dependency), it names columns by position and
rewrites ``is_in`` into a chain of ``or``: the statistics could no longer
judge a value set as a whole. So the tree is read from what pyarrow writes to
pickle an expression (``Expression.__reduce__``): an Arrow IPC file of one
row, whose schema metadata lists the tree in prefix order (``call``,
``field_ref``, ``nested_field_ref`` and its field names, ``literal``,
``options``, ``end``) and whose columns hold every
literal and options value with its exact type. The metadata keeps repeated
keys in order only through the Arrow C data interface, read with ``ctypes``.

What this module relies on, and the test that fails the day it changes
(``tests/test_arrow_format.py``):

- ``Expression.__reduce__`` returning ``(callable, (buffer,))`` with that
  IPC layout (:func:`decode`, :func:`filter_key`);
- ``FunctionOptions.deserialize`` reading options as a one-row IPC file of
  the options struct (:func:`function_options`);
- ``Expression._call(function, arguments, options)`` (:func:`to_expression`).

When a filter cannot be read at run time, the caller scans every batch
(correct, only slower) and :func:`decode` warns once per process, so a
pyarrow release that changes the format is noticed, not silently slow.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import warnings

import pyarrow as pa
import pyarrow.compute as pc

from batchcorder._scan.tree import Call, FieldRef, Literal, Node

__all__ = ["decode", "filter_key", "function_options", "to_expression"]


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


_warned = threading.Event()


def _warn_unreadable(expression: object) -> None:
    """Warn, once per process, that a filter could not be read (batches are not skipped)."""
    if _warned.is_set():
        return
    _warned.set()
    warnings.warn(
        f"batchcorder cannot read the filter {expression} as serialised by pyarrow "
        f"{pa.__version__}: scans read every batch instead of skipping by statistics "
        "(answers are unchanged). Please report this with your pyarrow version.",
        RuntimeWarning,
        stacklevel=3,
    )


def _serialised(expression: pc.Expression) -> pa.Buffer:
    """What pyarrow pickles ``expression`` as: an IPC file (see the module's docstring)."""
    _, (serialised,) = expression.__reduce__()
    return serialised


def decode(expression: pc.Expression) -> Node | None:
    """The tree of ``expression``; None (and a warning, once) if it cannot be read.

    Examples
    --------
    >>> import pyarrow.dataset as ds
    >>> decode(ds.field("x") < 3)
    Call(function='less', arguments=(FieldRef(name='x'), Literal(value=<pyarrow.Int64Scalar: 3>)), options=None)
    """
    try:
        table = pa.ipc.open_file(_serialised(expression)).read_all()
        pairs = _metadata_pairs(table.schema)
        position, node = _node(pairs, 0, table)
    except (_Unreadable, pa.ArrowException, ValueError, TypeError, IndexError, struct.error):
        node, position, pairs = None, 0, []
    if node is None or position != len(pairs):
        _warn_unreadable(expression)
        return None
    return node


def _node(pairs: list[tuple[bytes, bytes]], position: int, table: pa.Table) -> tuple[int, Node]:
    """The node starting at ``pairs[position]`` and the position after it."""
    key, value = pairs[position]
    if key == b"literal":
        return position + 1, Literal(table.column(int(value))[0])
    if key == b"field_ref":
        return position + 1, FieldRef(value.decode())
    if key == b"nested_field_ref":
        return _nested_field_ref(pairs, position)
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


def _nested_field_ref(pairs: list[tuple[bytes, bytes]], position: int) -> tuple[int, Node]:
    """A reference to a field of a struct (``ds.field("st", "a")``, what DuckDB pushes for
    ``st.a``) as ``struct_field`` of its top-level column, and the position after it."""
    count = int(pairs[position][1])
    refs = pairs[position + 1 : position + 1 + count]
    if count < 1 or len(refs) != count or any(key != b"field_ref" for key, _ in refs):
        raise _Unreadable(b"nested_field_ref")
    names = [value.decode() for _, value in refs]
    node: Node = FieldRef(names[0])
    if count > 1:
        # The options as pyarrow serialises them, read from an expression that has them.
        template = pc.Expression._call(
            "struct_field", [pc.field("_")], pc.StructFieldOptions(names[1:])
        )
        table = pa.ipc.open_file(_serialised(template)).read_all()
        _, call = _node(_metadata_pairs(table.schema), 0, table)
        assert isinstance(call, Call)
        node = Call("struct_field", (node,), call.options)
    return position + 1 + count, node


def filter_key(filter: pc.Expression) -> bytes | None:
    """A key of ``filter`` for memos: equal filters, equal keys; None if it has none.

    Examples
    --------
    >>> import pyarrow.dataset as ds
    >>> filter_key(ds.field("x") < 3) == filter_key(ds.field("x") < 3)
    True
    >>> filter_key(ds.field("x") < 3) == filter_key(ds.field("x") < 3.0)
    False
    """
    try:
        return bytes(_serialised(filter).to_pybytes())
    except (pa.ArrowException, TypeError, ValueError, AttributeError):
        return None


def function_options(options: pa.StructScalar) -> pc.FunctionOptions:
    """The options object of a decoded call, read back as pyarrow serialises options.

    pyarrow writes options as a one-row IPC file of this struct (with its
    ``_type_name``); ``FunctionOptions.deserialize`` reads that file.
    """
    table = pa.table([pa.repeat(options, 1)], names=[""])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return pc.FunctionOptions.deserialize(sink.getvalue())


def to_expression(node: Node) -> pc.Expression:
    """The ``pyarrow.compute.Expression`` of a tree :func:`decode` read (or one built alike).

    Examples
    --------
    >>> import pyarrow.dataset as ds
    >>> to_expression(decode(ds.field("x") < 3)).equals(ds.field("x") < 3)
    True
    """
    if isinstance(node, FieldRef):
        return pc.field(node.name)
    if isinstance(node, Literal):
        return pc.scalar(node.value)
    options = None if node.options is None else function_options(node.options)
    arguments = [to_expression(argument) for argument in node.arguments]
    return pc.Expression._call(node.function, arguments, options)
