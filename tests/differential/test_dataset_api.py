"""pyarrow's dataset API over every dataset of a cache answers as over a plain dataset of the table.

Hypothesis generates a table with columns of numeric, decimal, temporal and
dictionary types (and columns no call uses), filters (``is_in`` with value
sets of other types, comparisons with scalars of other types, casts of
strings and checked arithmetic that raise, and/or/not of those) and calls
(``to_table``, ``to_batches``, ``head``, ``count_rows``, ``scanner(...)`` and
its methods; :mod:`tests.differential.datasets`). Every call runs twice on
``batchcorder.dataset(cache)``, ``batchcorder.adapters.duckdb.dataset(cache)``
and ``batchcorder.adapters.datafusion.dataset(cache)``, over caches in every
storage mode, each fresh, partly ingested or fully ingested when the dataset
is made, and must answer as the same call on a ``pyarrow.dataset`` of the
table's batches — or raise an error of the same kind.
"""

from __future__ import annotations

import decimal
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.conftest import MODES
from tests.differential.compare import (
    Outcome,
    RegistrationFailed,
    classify,
    difference,
)
from tests.differential.datasets import (
    DATASETS,
    FIXED,
    Call,
    calls,
    dataset_tables,
    plain_dataset,
)
from tests.differential.harness import STATES, Caches, Source

#: Examples per run; each makes up to 8 calls on 3 datasets in 3 modes.
EXAMPLES = 5 * int(os.environ.get("BATCHCORDER_DIFFERENTIAL_EXAMPLES", "40"))


def _outcome(call: Call, dataset: object) -> Outcome:
    try:
        return Outcome(call(dataset))  # type: ignore[arg-type]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # an engine's panic included
        return Outcome(None, error)


def _problem(expected: Outcome, got: Outcome) -> str | None:
    """What is wrong with ``got``, or None."""
    if expected.error is not None:
        if got.error is None:
            assert got.table is not None
            return (
                f"the plain dataset raised {expected.error_type} ({expected.error_kind}): "
                f"{expected.error}; the cache's answered {got.table.num_rows} rows"
            )
        if got.error_kind != expected.error_kind:
            return (
                f"raised {got.error_type} ({got.error_kind}): {got.error}; the plain dataset "
                f"{expected.error_type} ({expected.error_kind}): {expected.error}"
            )
        return None
    if got.error is not None:
        return f"raised {got.error_type} ({got.error_kind}): {got.error}"
    assert expected.table is not None and got.table is not None
    return difference(
        expected.table,
        got.table,
        order_columns=None,
        positional=True,
        strict_zero=True,
        tolerances={},
    )


def _in_its_semantics(
    dataset: object, drawn: list[Call], expected: list[Outcome], table: pa.Table
) -> list[Outcome]:
    """The plain dataset's answers to ``drawn`` with each filter meaning what it means to
    ``dataset``: an engine's dataset (DuckDB's, DataFusion's) filters as its engine does
    (NaN above every number, SQL's IN), so its reference is the plain dataset given the
    filter rewritten to that meaning; the rewrite itself is checked against the engines."""
    rewrite = getattr(dataset, "engine_filter", None)
    if rewrite is None or getattr(dataset, "_semantics", "pyarrow") == "pyarrow":
        return expected
    plain = plain_dataset(table)
    answers = []
    for call, want in zip(drawn, expected, strict=True):
        try:
            rewritten = replace(call, filter=rewrite(call.filter))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            answers.append(want)  # the rewrite refused the filter: as pyarrow would
            continue
        answers.append(_outcome(rewritten, plain))
    return answers


def dataset_mismatch(source: Source, drawn: list[Call], rotation: int, partial: int) -> str | None:
    """Run ``drawn`` on every dataset of a cache of ``source`` in every mode and state;
    describe the first answer unlike the plain dataset's, or return None."""
    table = source.table()
    expected = [_outcome(call, plain_dataset(table)) for call in drawn]
    with tempfile.TemporaryDirectory() as directory:
        for index, mode in enumerate(MODES):
            caches = Caches({"t": source}, mode, Path(directory), partial)
            try:
                for number, (name, make) in enumerate(DATASETS.items()):
                    state = STATES[(number + index + rotation) % 3]
                    where = f"{name}, {mode} mode, {state} cache"
                    try:
                        dataset = make(caches.open(state)["t"])
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except BaseException as error:
                        return RegistrationFailed(f"{where}: making the dataset raised {error!r}")
                    wanted = _in_its_semantics(dataset, drawn, expected, table)
                    for call, want in zip(drawn, wanted, strict=True):
                        for replay in (1, 2):
                            got = _outcome(call, dataset)
                            problem = _problem(want, got)
                            if problem is not None:
                                kind = classify(want, got)
                                return kind(
                                    f"{where}, run {replay}:\n  {call.describe()}\n  {problem}"
                                )
            finally:
                caches.close()
    return None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_dataset_of_a_cache_answers_as_a_plain_dataset(data: st.DataObject) -> None:
    schema, batches, seeds = data.draw(dataset_tables(), label="table")
    drawn = data.draw(st.lists(calls(schema, seeds), min_size=1, max_size=8), label="calls")
    rotation = data.draw(st.integers(0, 2), label="states")
    partial = data.draw(st.integers(1, 3), label="batches a partly ingested cache holds")
    for call in drawn:
        note(call.describe())
    mismatch = dataset_mismatch(Source(schema, batches), drawn, rotation, partial)
    if mismatch is not None:
        raise mismatch


def _table(name: str, data_type: pa.DataType, batches: list[list[object]]) -> Source:
    """Batches of a typed column ``name`` and the fixed columns, ``s`` holding "abc"."""
    schema = pa.schema([(name, data_type), *FIXED.items()])
    made = []
    for index, values in enumerate(batches):
        rows = len(values)
        columns = {
            name: pa.array(values, data_type),
            "x": pa.array([index * 10 + row for row in range(rows)], pa.int64()),
            "s": pa.array(["abc"] * rows),
            "pad": pa.array(["p"] * rows),
        }
        made.append(pa.RecordBatch.from_pydict(columns, schema=schema))
    return Source(schema, made)


#: Fixed cases the generated examples found: each a source and calls.
CASES: dict[str, tuple[Source, list[Call]]] = {
    # is_in casts its value set to the column's type; statistics must compare
    # the same way (0.1 as float32 is not 0.1 as float64).
    "is_in of a float64 over float32": (
        _table("f32", pa.float32(), [[0.1], [0.1]]),
        [Call("to_table", pc.field("f32").isin([0.1]), None)],
    ),
    "is_in of a float64 over decimal(5, 2)": (
        _table("d52", pa.decimal128(5, 2), [[decimal.Decimal("1.23")]] * 2),
        [Call("to_table", pc.field("d52").isin([1.225]), None)],
    ),
    # The cast raises on the plain dataset; skipping every batch by the bound
    # on x must not hide it.
    "a cast that raises behind a bound": (
        _table("i64", pa.int64(), [[1, 2], [3]]),
        [
            Call(
                "to_table",
                (pc.field("x") > 100) & (pc.field("s").cast(pa.int64()) > 0),
                None,
            )
        ],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_case_answers_as_a_plain_dataset(case: str) -> None:
    source, drawn = CASES[case]
    mismatch = dataset_mismatch(source, drawn, rotation=0, partial=1)
    if mismatch is not None:
        raise mismatch
