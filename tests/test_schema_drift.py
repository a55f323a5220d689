"""An upstream whose batches break its declared schema is refused, never served."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import hypothesis.strategies as st
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from batchcorder import StreamCache
from batchcorder.errors import SchemaMismatchError

DECLARED = pa.schema([("x", pa.int64()), ("s", pa.string())])
GOOD = pa.record_batch({"x": [1, 2], "s": ["a", "b"]}, schema=DECLARED)

#: Every storage mode and write policy the check must hold in.
POLICIES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "memory": lambda _: {},
    "disk": lambda path: {"disk_path": path, "disk_capacity": 1 << 24},
    "disk-1-byte-hot": lambda path: {
        "disk_path": path,
        "disk_capacity": 1 << 24,
        "memory_capacity": 1,
    },
    "disk-on-eviction": lambda path: {
        "disk_path": path,
        "disk_capacity": 1 << 24,
        "memory_capacity": 1,
        "write_policy": "on_eviction",
    },
}


def drifting(*batches: pa.RecordBatch, schema: pa.Schema = DECLARED) -> pa.RecordBatchReader:
    """A reader declaring ``schema`` that yields ``batches`` unchecked."""
    return pa.RecordBatchReader.from_batches(schema, iter(batches))


@pytest.fixture(params=list(POLICIES))
def build(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., StreamCache]]:
    caches: list[StreamCache] = []

    def make(source: Any) -> StreamCache:
        cache = StreamCache(source, **POLICIES[request.param](tmp_path / "cache"))
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()


def test_a_batch_of_another_type_is_an_error_for_every_reader(
    build: Callable[..., StreamCache],
) -> None:
    wrong = pa.record_batch({"x": ["1", "2"], "s": ["c", "d"]})
    cache = build(drifting(GOOD, wrong, GOOD))
    for _ in range(3):
        reader = cache.reader()
        assert next(reader).equals(GOOD)  # the prefix stays replayable
        with pytest.raises(SchemaMismatchError) as caught:
            next(reader)
        message = str(caught.value)
        assert "'x'" in message and "int64" in message and "string" in message
        assert "batch 1" in message
    assert cache.ingested_count == 1
    assert isinstance(caught.value, ValueError)


def test_duckdb_never_sums_a_drifted_column(build: Callable[..., StreamCache]) -> None:
    # The reproduction: served as-is, DuckDB summed string buffers as int64.
    wrong = pa.record_batch({"x": ["a", "bb"], "s": ["c", "d"]})
    cache = build(drifting(GOOD, wrong))  # noqa: F841 (DuckDB finds it by its name)
    for _ in range(2):
        with pytest.raises(duckdb.Error, match="does not match the declared schema"):
            duckdb.sql("SELECT sum(x) FROM cache").fetchall()


def test_pyarrow_consumers_get_the_error_through_the_c_stream(
    build: Callable[..., StreamCache],
) -> None:
    renamed = pa.record_batch({"x": [1], "y": ["a"]})
    cache = build(drifting(renamed))
    with pytest.raises(pa.ArrowInvalid, match="field 1 is declared 's', the batch has 'y'"):
        pa.table(cache)


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (pa.record_batch({"x": [1]}), "field 's' (string) is missing from the batch"),
        (
            pa.record_batch({"x": [1], "s": ["a"], "extra": [1.0]}),
            "the batch has fields the schema does not declare: ['extra']",
        ),
        (pa.record_batch({"s": ["a"], "x": [1]}), "field 0 is declared 'x', the batch has 's'"),
        (
            pa.record_batch({"x": pa.array([1], pa.int32()), "s": ["a"]}),
            "field 'x' is declared int64, the batch has int32",
        ),
    ],
)
def test_the_error_names_the_difference(
    build: Callable[..., StreamCache], batch: pa.RecordBatch, expected: str
) -> None:
    with pytest.raises(SchemaMismatchError, match="upstream batch 0 does not match") as caught:
        list(build(drifting(batch)))
    assert expected in str(caught.value)


def test_metadata_and_nullability_differences_are_served_under_the_declared_schema(
    build: Callable[..., StreamCache],
) -> None:
    declared = pa.schema(
        [pa.field("x", pa.int64(), nullable=False, metadata={"unit": "s"}), ("s", pa.string())],
        metadata={"origin": "database"},
    )
    plain = pa.record_batch({"x": [1, 2], "s": ["a", None]})
    cache = build(drifting(plain, schema=declared))
    for _ in range(2):
        (batch,) = list(cache)
        assert batch.schema.equals(declared, check_metadata=True)
        assert batch.column(0).equals(plain.column(0))
        assert pa.table(cache).schema.equals(declared, check_metadata=True)


def test_nulls_in_a_field_declared_not_nullable_are_refused(
    build: Callable[..., StreamCache],
) -> None:
    declared = pa.schema([pa.field("x", pa.int64(), nullable=False)])
    cache = build(drifting(pa.record_batch({"x": [1, None]}), schema=declared))
    with pytest.raises(SchemaMismatchError, match="declared not nullable, the batch has 1 nulls"):
        list(cache)


def test_dictionary_index_types_must_match(build: Callable[..., StreamCache]) -> None:
    declared = pa.schema([("d", pa.dictionary(pa.int32(), pa.string()))])
    narrow = pa.record_batch(
        {"d": pa.array(["a", "b"]).dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string()))}
    )
    with pytest.raises(
        SchemaMismatchError, match="declared dictionary<values=string, indices=int32"
    ):
        list(build(drifting(narrow, schema=declared)))


TYPES = [
    pa.int64(),
    pa.int32(),
    pa.float64(),
    pa.string(),
    pa.large_string(),
    pa.bool_(),
    pa.date32(),
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    declared=st.sampled_from(TYPES),
    served=st.lists(st.sampled_from(TYPES), min_size=1, max_size=4),
)
def test_a_stream_is_served_exactly_up_to_its_first_drifted_batch(
    build: Callable[..., StreamCache], declared: pa.DataType, served: list[pa.DataType]
) -> None:
    schema = pa.schema([("v", declared)])
    batches = [pa.RecordBatch.from_arrays([pa.nulls(2, kind)], names=["v"]) for kind in served]
    cache = build(drifting(*batches, schema=schema))
    first_bad = next((i for i, kind in enumerate(served) if kind != declared), None)
    good = batches if first_bad is None else batches[:first_bad]
    for _ in range(2):
        seen: list[pa.RecordBatch] = []
        if first_bad is None:
            seen = list(cache)
        else:
            with pytest.raises(SchemaMismatchError, match=f"upstream batch {first_bad} "):
                seen.extend(cache)
        assert [batch.schema.field(0).type for batch in seen] == [declared] * len(good)
