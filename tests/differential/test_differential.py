"""Differential tests: every engine path over a cache answers as the same engine over the table.

Hypothesis generates a table ``t`` in batches (a unique ``id``, ints with
nulls, floats with NaN, infinities and -0.0, unicode, empty and numeric
strings, dates, timestamps with and without a time zone, booleans, a
dictionary column with a dictionary of its own per batch, a list column; no
batch at all, empty batches, sliced batches), a small second table ``u``
(see :mod:`tests.differential.strategies`), and up to three queries
(:mod:`tests.differential.queries`: projections of columns, casts that can
fail, string functions, checked arithmetic and window functions; predicates
of every shape; ``DISTINCT``, ``ORDER BY``, ``LIMIT``; ``GROUP BY`` with
aggregates; slices, self-joins, joins with ``u``, ``IN (subquery)``,
``UNION ALL``, a CTE read twice). Each query runs on every engine path of
:data:`tests.differential.engines.PATHS` (SQL, or the Polars LazyFrame API),
twice, over caches in memory mode, disk mode, and disk mode with a 1-byte hot
layer, each fresh, partly ingested or fully ingested, and must give what the
same path gives over the plain ``pa.Table`` objects — or raise an error of
the same kind (:mod:`tests.differential.harness`).

The default number of examples keeps the differential suite within its share
of the CI budget. For a longer run, set ``BATCHCORDER_DIFFERENTIAL_EXAMPLES``::

    BATCHCORDER_DIFFERENTIAL_EXAMPLES=500 .venv/bin/python -m pytest tests/differential -q

``--hypothesis-show-statistics`` shows how often the answers over the table
were empty or errors, per path.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.differential.engines import ENGINES, paths_of
from tests.differential.harness import Source, first_mismatch
from tests.differential.strategies import U_SCHEMA, other_tables, queries, tables

#: Examples per run and engine; each runs up to 3 queries on each of the engine's
#: paths in every mode.
EXAMPLES = int(os.environ.get("BATCHCORDER_DIFFERENTIAL_EXAMPLES", "40"))


@pytest.mark.parametrize("engine", ENGINES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_path_over_a_cache_answers_as_over_the_table(
    engine: str, data: st.DataObject
) -> None:
    schema, batches = data.draw(tables(), label="table t")
    other = data.draw(other_tables(), label="table u")
    drawn = data.draw(
        st.lists(queries({"t": batches, "u": other}), min_size=1, max_size=3), label="queries"
    )
    paths = data.draw(st.permutations(paths_of(engine)), label="path order")
    rotation = data.draw(st.integers(0, 2), label="states")
    partial = data.draw(st.integers(1, 4), label="batches a partly ingested cache holds")
    for query in drawn:
        note(f"query: {query.describe()}")
    sources = {"t": Source(schema, batches), "u": Source(U_SCHEMA, other)}
    mismatch = first_mismatch(sources, drawn, paths, rotation, partial)
    if mismatch is not None:
        raise mismatch
