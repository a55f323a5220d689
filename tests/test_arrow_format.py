"""Canary: the private pyarrow formats :mod:`batchcorder._scan.arrow_format` reads.

Batch skipping reads a filter's tree from what pyarrow pickles it as
(``Expression.__reduce__``), options back through
``FunctionOptions.deserialize``, and builds expressions with
``Expression._call``. If a pyarrow release changes any of them these tests
fail, rather than scans silently reading every batch.

Internal parts under test: ``batchcorder._scan``, ``batchcorder._scan.arrow_format``, ``batchcorder._scan.tree``.
"""

from __future__ import annotations

import warnings

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from batchcorder._scan import arrow_format
from batchcorder._scan.arrow_format import decode, filter_key, to_expression
from batchcorder._scan.tree import Call, FieldRef, Literal

#: Every kind of node and option the predicate evaluator and the engine rewrite read.
FILTERS = [
    ds.field("x") < 3,
    (ds.field("x") >= 1) & (ds.field("y") != "a"),
    (ds.field("x") == 2) | ~ds.field("b"),
    ds.field("x").isin([1, 2, None]),
    ds.field("s").isin(["a"]),
    ds.field("f").is_nan(),
    ds.field("f").is_null(nan_is_null=True),
    ds.field("f").is_valid(),
    pc.if_else(ds.field("b"), ds.field("x") > 1, pc.scalar(pa.scalar(None, pa.bool_()))),
    pc.and_kleene(ds.field("b"), pc.scalar(True)),
    pc.or_kleene(ds.field("b"), ds.field("x") > pc.scalar(pa.scalar(1, pa.int8()))),
    ds.field("t") > pa.scalar(0, pa.timestamp("us", tz="UTC")),
    ds.field("d") == pa.scalar(1, pa.decimal128(5, 2)),
    ds.field("st") == ds.field("st"),
]


@pytest.mark.parametrize("filter", FILTERS, ids=str)
def test_every_filter_the_evaluator_reads_round_trips(filter: pc.Expression) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        node = decode(filter)
    assert node is not None
    assert to_expression(node).equals(filter)


@pytest.mark.parametrize("path", [("st", "a"), ("st", "inner", "g")])
def test_a_field_of_a_struct_is_read_as_struct_field_of_its_column(path: tuple[str, ...]) -> None:
    # What DuckDB pushes for ``st.a``: a nested field reference.
    table = pa.table({"st": [{"a": 1, "inner": {"g": 0.5}}, {"a": 7, "inner": {"g": 2.0}}, None]})
    filter = ds.field(*path) > 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        node = decode(filter)
    assert isinstance(node, Call) and node.function == "greater"
    column = node.arguments[0]
    assert isinstance(column, Call) and column.function == "struct_field"
    assert column.arguments == (FieldRef("st"),)
    rows = ds.dataset(table).to_table(filter=to_expression(node)).to_pylist()
    assert rows == ds.dataset(table).to_table(filter=filter).to_pylist()
    assert len(rows) == 1


def test_the_tree_is_read_with_exact_types_and_options() -> None:
    node = decode(ds.field("x").isin([1, 2]))
    assert isinstance(node, Call) and node.function == "is_in"
    assert node.arguments == (FieldRef("x"),)
    assert node.options is not None
    assert node.options["value_set"].values.equals(pa.array([1, 2]))
    literal = decode(ds.field("x") < pa.scalar(3, pa.int8()))
    assert isinstance(literal, Call)
    assert literal.arguments[1] == Literal(pa.scalar(3, pa.int8()))


def test_filter_keys_tell_filters_apart_by_type_and_value() -> None:
    keys = {filter_key(filter) for filter in FILTERS}
    assert None not in keys and len(keys) == len(FILTERS)
    assert filter_key(ds.field("x") < 3) == filter_key(ds.field("x") < 3)
    assert filter_key(ds.field("x") < 3) != filter_key(ds.field("x") < 3.0)


def test_an_unreadable_filter_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow_format, "_warned", type(arrow_format._warned)())
    monkeypatch.setattr(arrow_format, "_serialised", lambda expression: pa.py_buffer(b"junk"))
    with pytest.warns(RuntimeWarning, match="cannot read the filter"):
        assert decode(ds.field("x") < 3) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert decode(ds.field("x") < 3) is None
