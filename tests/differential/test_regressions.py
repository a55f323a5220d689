"""Fixed cases of the differential check, each a wrong answer or a crash it once found.

Each case runs on every path of :data:`tests.differential.engines.PATHS`, in
every storage mode, like a generated example; these always run, whatever
Hypothesis draws.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from tests.differential.engines import PATHS
from tests.differential.harness import Source, first_mismatch
from tests.differential.queries import (
    Aggregate,
    And,
    Between,
    Compare,
    GroupBy,
    Head,
    Query,
    Select,
    SortKey,
    StringMatch,
    Table,
    Window,
)
from tests.differential.strategies import U_SCHEMA, schema


def make_batch(table_schema: pa.Schema, rows: int, **columns: list[Any]) -> pa.RecordBatch:
    """A batch of ``rows`` rows: the given columns, every other column null."""
    arrays = []
    for field in table_schema:
        values = columns.get(field.name, [None] * rows)
        if pa.types.is_dictionary(field.type):
            arrays.append(pa.array(values, pa.string()).dictionary_encode())
        else:
            arrays.append(pa.array(values, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=table_schema)


STRINGS = schema(pa.string())
VIEWS = schema(pa.string_view())
EVERYTHING = Select(None)


def empty_slice() -> list[pa.RecordBatch]:
    # An empty slice at a non-zero offset of a string column: DataFusion's
    # string functions panicked on it when the adapter registered it as it was.
    whole = make_batch(STRINGS, 3, s=["hello", "world", "0123456789"], i=[1, 2, 3])
    return [whole.slice(3, 0)]


CASES: dict[str, tuple[pa.Schema, list[pa.RecordBatch], list[Query]]] = {
    "empty sliced string batch": (
        STRINGS,
        empty_slice(),
        [Query(Table(), StringMatch("s", "contains", ""), EVERYTHING)],
    ),
    "range on one column": (
        STRINGS,
        [make_batch(STRINGS, 6, i=[None, 1, 5, 10, 15, 20], s=["a", "b", "c", "", "é", None])],
        [
            Query(Table(), And((Compare("i", ">=", 5), Compare("i", "<", 20))), EVERYTHING),
            Query(Table(), Between("s", "a", "c"), Select(("i",), (SortKey(0, False, True),))),
        ],
    ),
    "head then filter": (
        STRINGS,
        [make_batch(STRINGS, 4, i=[-1, 1, 5, 10]), make_batch(STRINGS, 3, i=[15, -20, 25])],
        [Query(Head(3), Compare("i", ">", 1), Select(("i", "s")))],
    ),
    "selective filter on string_view": (
        VIEWS,
        [make_batch(VIEWS, 10, i=list(range(10)), s=[f"v{n}" for n in range(10)])],
        [Query(Table(), Compare("i", "=", 3), EVERYTHING)],
    ),
    "a dictionary per batch": (
        STRINGS,
        [
            make_batch(STRINGS, 3, cat=["red", None, "blue"], k=[1, 2, 3]),
            make_batch(STRINGS, 2, cat=["blue", "green"], k=[4, 5]),
        ],
        [
            Query(
                Table(),
                Compare("cat", "!=", "green"),
                GroupBy(("cat",), (Aggregate("count_star"), Aggregate("sum", "k"))),
            )
        ],
    ),
    # Polars (2.1) panicked on a window function over a cache scan with columns
    # the query does not use.
    "window function, other columns unused": (
        STRINGS,
        [
            make_batch(STRINGS, 2, id=[0, 1], k=[1, 1], f=[1.0, 2.0], s=["a", "b"]),
            make_batch(STRINGS, 1, id=[2], k=[2], f=[3.0], s=["c"]),
        ],
        [Query(Table(), None, Select(("id", "k", Window("sum", "f", "k"))))],
    ),
    # DataFusion orders NaN above every number; a dataset made for it must too.
    "NaN above a bound": (
        STRINGS,
        [
            make_batch(STRINGS, 2, id=[0, 1], f=[math.nan, 0.5]),
            make_batch(STRINGS, 2, id=[2, 3], f=[1.0, math.nan]),
        ],
        [Query(Table(), Compare("f", ">", 0.9999), EVERYTHING)],
    ),
    # Polars raises on comparing a list column with a list; statistics that rule
    # out every batch by the other half of the filter must not hide that.
    "a raising list comparison behind a bound no batch meets": (
        STRINGS,
        [
            make_batch(STRINGS, 2, id=[0, 1], k=[1, 2], l=[[1], [2]]),
            make_batch(STRINGS, 1, id=[2], k=[3], l=[[0]]),
        ],
        [Query(Table(), And((Compare("k", ">", 4), Compare("l", ">", (0,)))), EVERYTHING)],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_case_answers_as_over_the_table(case: str) -> None:
    table_schema, batches, queries = CASES[case]
    sources = {"t": Source(table_schema, batches), "u": Source(U_SCHEMA, [])}
    mismatch = first_mismatch(sources, queries, PATHS)
    if mismatch is not None:
        raise mismatch
