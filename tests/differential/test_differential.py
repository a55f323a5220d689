"""Differential tests: every engine path over a cache answers as the same engine over the table.

Hypothesis generates a table in batches (ints with nulls, floats with NaN,
infinities and -0.0, unicode and empty strings, dates, timestamps with and
without a time zone, booleans, a dictionary column with a dictionary of its
own per batch; no batch at all, empty batches, sliced batches; see
:mod:`tests.differential.strategies`) and up to three queries over it
(:mod:`tests.differential.queries`: projections, predicates of every shape,
LIMIT, GROUP BY with aggregates, self-joins). Each query runs on every engine
path of :data:`tests.differential.engines.PATHS`, twice, over a cache of the
table in memory mode, disk mode, and disk mode with a 1-byte hot layer, and
must give what the same path gives over the plain ``pa.Table``
(:mod:`tests.differential.harness`). One cache per mode serves every path of
an example, in a drawn order, so each path is sometimes the first to read a
fresh cache.

The default number of examples keeps this module within its share of the CI
budget (under a minute on 2 cores). For a longer run, set
``BATCHCORDER_DIFFERENTIAL_EXAMPLES``::

    BATCHCORDER_DIFFERENTIAL_EXAMPLES=500 .venv/bin/python -m pytest tests/differential -q

``--hypothesis-show-statistics`` shows how often the answers over the table
were empty or errors, per path.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.differential.engines import PATHS
from tests.differential.harness import first_mismatch
from tests.differential.strategies import queries, tables

#: Examples per run; each runs up to 3 queries on every path in every mode.
EXAMPLES = int(os.environ.get("BATCHCORDER_DIFFERENTIAL_EXAMPLES", "50"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_path_over_a_cache_answers_as_over_the_table(data: st.DataObject) -> None:
    schema, batches = data.draw(tables(), label="table")
    drawn = data.draw(st.lists(queries(batches), min_size=1, max_size=3), label="queries")
    paths = data.draw(st.permutations(PATHS), label="path order")
    for query in drawn:
        note(f"query: {query.describe()}")
    mismatch = first_mismatch(schema, batches, drawn, paths)
    assert mismatch is None, mismatch
