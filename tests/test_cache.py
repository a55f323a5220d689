"""Behaviour of StreamCache and its readers, in every storage mode."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import CastingStreamCache, StreamCache, StreamCacheReader
from tests.conftest import CountingSource, UpstreamFailure, make_batches

MakeCache = Callable[..., StreamCache]


def collect(stream: object) -> list[pa.RecordBatch]:
    return list(pa.RecordBatchReader.from_stream(stream))


def assert_same_batches(actual: list[pa.RecordBatch], expected: list[pa.RecordBatch]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.equals(want), (got, want)


def test_pulls_lazily_only_as_far_as_the_furthest_reader(make_cache: MakeCache) -> None:
    source = CountingSource(make_batches(50))
    cache = make_cache(source)
    assert cache.ingested_count == 0 and source.pulled == 0
    reader = cache.reader()
    for _ in range(3):
        next(reader)
    assert cache.ingested_count == 3
    assert source.pulled == 3
    assert not cache.upstream_exhausted


def test_every_reader_replays_from_batch_zero(make_cache: MakeCache) -> None:
    batches = make_batches(7)
    source = CountingSource(batches)
    cache = make_cache(source)
    for _ in range(3):
        assert_same_batches(list(cache.reader()), batches)
        assert_same_batches(collect(cache), batches)
        assert_same_batches(list(cache), batches)
    assert source.pulled == 7
    assert cache.upstream_exhausted


def test_interleaved_readers_each_see_the_whole_stream(make_cache: MakeCache) -> None:
    batches = make_batches(6)
    cache = make_cache(CountingSource(batches))
    first, second = cache.reader(), cache.reader()
    seen_first = [next(first), next(first)]
    seen_second = [next(second)]
    seen_first += list(first)
    seen_second += list(second)
    assert_same_batches(seen_first, batches)
    assert_same_batches(seen_second, batches)


def test_reader_from_frontier_starts_at_the_first_unpulled_batch(make_cache: MakeCache) -> None:
    batches = make_batches(5)
    cache = make_cache(CountingSource(batches))
    head = cache.reader()
    next(head), next(head)
    late = cache.reader(from_start=False)
    assert_same_batches(list(late), batches[2:])
    assert_same_batches(list(head), batches[2:])


def test_schema_is_known_before_any_batch_is_pulled(make_cache: MakeCache) -> None:
    source = CountingSource(make_batches(2))
    cache = make_cache(source)
    assert cache.schema == source.schema
    assert pa.schema(cache) == source.schema
    assert cache.reader().schema == source.schema
    assert source.pulled == 0


def test_requested_schema_is_honoured(make_cache: MakeCache) -> None:
    batches = make_batches(3)
    cache = make_cache(CountingSource(batches))
    wanted = pa.schema(
        [("id", pa.float64()), ("value", pa.float64()), ("label", pa.large_string())]
    )
    capsule = cache.__arrow_c_stream__(wanted.__arrow_c_schema__())
    table = pa.RecordBatchReader._import_from_c_capsule(capsule).read_all()
    assert table.schema == wanted
    assert table.equals(pa.Table.from_batches(batches).cast(wanted))


def test_ingest_all_is_idempotent_and_counts_batches(make_cache: MakeCache) -> None:
    source = CountingSource(make_batches(4))
    cache = make_cache(source)
    assert cache.ingest_all() == 4
    assert cache.ingest_all() == 4
    assert cache.upstream_exhausted
    assert source.pulled == 4
    assert cache._ingestion._upstream is None  # released once exhausted


def test_ingest_all_reports_progress(make_cache: MakeCache) -> None:
    batches = make_batches(4, rows=3)
    cache = make_cache(CountingSource(batches))
    reports: list[tuple[int, int, int]] = []
    cache.ingest_all(lambda *counts: reports.append(counts))
    assert [report[:2] for report in reports] == [(1, 3), (2, 6), (3, 9), (4, 12), (4, 12)]
    assert reports[-1][2] == sum(batch.nbytes for batch in batches)
    with pytest.raises(TypeError, match="progress"):
        cache.ingest_all(progress=5)  # type: ignore[arg-type]


def test_stats_count_what_the_cache_did(make_cache: MakeCache, mode: str) -> None:
    batches = make_batches(4, rows=10)
    cache = make_cache(CountingSource(batches))
    cache.ingest_all()
    list(cache.reader())
    stats = cache.stats
    assert stats.ingested_batches == 4
    assert stats.ingested_rows == 40
    assert stats.readers_created == 1
    assert stats.evicted_batches == 0
    assert stats.upstream_exhausted
    if mode == "memory":
        assert stats.memory_batches == 4 and stats.disk_bytes == 0
        assert stats.memory_bytes == sum(b.get_total_buffer_size() for b in batches)
    else:
        assert stats.disk_batches == 4 and stats.disk_bytes > 0
    if mode == "disk-1-byte-hot":
        assert stats.memory_batches == 0 and stats.memory_bytes == 0


def test_zero_row_batches_and_empty_streams_round_trip(make_cache: MakeCache) -> None:
    batches = make_batches(3)
    empty = batches[0].slice(0, 0)
    mixed = [empty, batches[0], empty, batches[1]]
    cache = make_cache(CountingSource(mixed))
    assert_same_batches(list(cache.reader()), mixed)
    assert_same_batches(list(cache.reader()), mixed)

    nothing = make_cache(CountingSource([], schema=batches[0].schema))
    assert list(nothing.reader()) == []
    table = pa.table(nothing)
    assert table.num_rows == 0 and table.schema == batches[0].schema


def rich_batches() -> list[pa.RecordBatch]:
    """Batches of many types, with a dictionary that changes between batches."""
    schema = pa.schema(
        [
            ("i", pa.int32()),
            ("f", pa.float32()),
            ("s", pa.large_string()),
            ("ts", pa.timestamp("us", tz="Europe/Paris")),
            ("d", pa.decimal128(12, 3)),
            ("l", pa.list_(pa.int64())),
            ("st", pa.struct([("a", pa.int8()), ("b", pa.string())])),
            ("cat", pa.dictionary(pa.int16(), pa.string())),
            ("b", pa.binary()),
            ("n", pa.null()),
        ]
    )
    out = []
    for index, words in enumerate([["x", "y", "x"], ["p", None, "q"]]):
        out.append(
            pa.record_batch(
                [
                    pa.array([index, None, 3], pa.int32()),
                    pa.array([1.5, float("inf"), None], pa.float32()),
                    pa.array(["ä", None, "long" * 10], pa.large_string()),
                    pa.array([0, 10**12, None], pa.timestamp("us", tz="Europe/Paris")),
                    pa.array([Decimal("1.250"), None, Decimal("-3.001")], pa.decimal128(12, 3)),
                    pa.array([[1, 2], None, []], pa.list_(pa.int64())),
                    pa.array(
                        [{"a": 1, "b": "z"}, None, {"a": None, "b": None}], schema.field("st").type
                    ),
                    pa.array(words).dictionary_encode().cast(schema.field("cat").type),
                    pa.array([b"\x00", None, b"abc"]),
                    pa.nulls(3),
                ],
                schema=schema,
            )
        )
    return out


def test_every_type_round_trips_exactly(make_cache: MakeCache) -> None:
    batches = rich_batches()
    cache = make_cache(CountingSource(batches))
    for _ in range(2):
        replayed = list(cache.reader())
        assert_same_batches(replayed, batches)
        for got, want in zip(replayed, batches, strict=True):
            assert got.schema == want.schema
            assert got.column("cat").dictionary.equals(want.column("cat").dictionary)


def test_upstream_failure_reaches_every_reader_and_keeps_the_prefix(make_cache: MakeCache) -> None:
    batches = make_batches(5)
    source = CountingSource(batches, fail_at=3)
    cache = make_cache(source)
    first = cache.reader()
    got = [next(first) for _ in range(3)]
    # Through the C stream interface the upstream's exception arrives as a
    # pyarrow error carrying its message; every reader gets that same error.
    with pytest.raises(Exception, match="upstream broke at batch 3") as first_error:
        next(first)
    second = cache.reader()
    assert_same_batches([next(second) for _ in range(3)], batches[:3])
    with pytest.raises(type(first_error.value), match="upstream broke at batch 3"):
        next(second)
    with pytest.raises(type(first_error.value), match="upstream broke at batch 3"):
        cache.ingest_all()
    with pytest.raises(Exception, match="upstream broke at batch 3"):
        pa.table(cache)
    assert_same_batches(got, batches[:3])
    assert cache.ingested_count == 3
    assert source.pulled == 3


def test_readers_are_independent_objects_and_report_closed(make_cache: MakeCache) -> None:
    cache = make_cache(CountingSource(make_batches(2)))
    reader = cache.reader()
    assert isinstance(reader, StreamCacheReader)
    assert not reader.closed
    list(reader)
    assert not reader.closed  # read to the end, as the reference says, is not closed
    assert list(reader) == []
    reader.close()
    assert reader.closed


def test_exported_reader_is_consumed(make_cache: MakeCache) -> None:
    batches = make_batches(3)
    cache = make_cache(CountingSource(batches))
    reader = cache.reader()
    next(reader)
    assert_same_batches(collect(reader), batches[1:])
    assert reader.closed
    with pytest.raises(ValueError, match="consumed"):
        reader.__arrow_c_stream__()
    with pytest.raises(ValueError, match="consumed"):
        next(reader)


def test_casting_views_replay_with_the_target_schema(make_cache: MakeCache) -> None:
    batches = make_batches(3)
    cache = make_cache(CountingSource(batches))
    target = pa.schema([("id", pa.int32()), ("value", pa.float32()), ("label", pa.string())])
    view = cache.cast(target)
    assert isinstance(view, CastingStreamCache)
    assert view.schema == target
    assert pa.schema(view) == target
    expected = pa.Table.from_batches(batches).cast(target)
    for _ in range(2):
        assert pa.table(view).equals(expected)
    assert pa.Table.from_batches(list(view)).equals(expected)
    assert view.cast(cache.schema).schema == cache.schema
    assert cache.reader().cast(target).read_all().equals(expected)
    renamed = cache.cast(pa.schema([("other", pa.int64())]))  # checked when read, as in 0.1.3
    with pytest.raises(ValueError, match="field names"):
        renamed.reader()
    with pytest.raises(TypeError, match=r"pyarrow\.Schema"):
        cache.cast("not a schema")  # type: ignore[arg-type]


def test_close_is_idempotent_and_later_use_raises(make_cache: MakeCache) -> None:
    cache = make_cache(CountingSource(make_batches(3)))
    reader = cache.reader()
    next(reader)
    cache.close()
    cache.close()
    assert cache.closed
    for use in (cache.reader, cache.ingest_all, lambda: next(reader), lambda: pa.table(cache)):
        with pytest.raises(ValueError, match="closed"):
            use()


def test_context_manager_closes(make_cache: MakeCache) -> None:
    with make_cache(CountingSource(make_batches(2))) as cache:
        assert pa.table(cache).num_rows == 10
    assert cache.closed


@pytest.mark.parametrize("source", [42, "text", [1, 2], pa.array([1, 2]), None])
def test_non_streams_are_rejected(source: object) -> None:
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        StreamCache(source)


def test_accepts_any_arrow_stream_producer() -> None:
    table = pa.table({"x": [1, 2, 3]})
    for source in (table, table.to_reader(), CountingSource(table.to_batches())):
        assert pa.table(StreamCache(source)).equals(table)


def test_memory_mode_is_zero_copy() -> None:
    batches = make_batches(3)
    cache = StreamCache(CountingSource(batches))
    for got, want in zip(cache.reader(), batches, strict=True):
        assert got.column(0).buffers()[1].address == want.column(0).buffers()[1].address


def test_memory_capacity_has_no_effect_in_memory_mode() -> None:
    batches = make_batches(20, rows=100)
    cache = StreamCache(CountingSource(batches), memory_capacity=1)
    assert_same_batches(list(cache.reader()), batches)
    assert cache.stats.memory_batches == 20


def test_repr_names_mode_and_state(make_cache: MakeCache, mode: str) -> None:
    cache = make_cache(CountingSource(make_batches(1)))
    expected = "memory" if mode == "memory" else "disk"
    assert repr(cache).startswith("StreamCache(ingested=0, exhausted=False, schema=id: int64")
    assert f"mode={expected}" in repr(cache)
    assert repr(cache.reader()).startswith("StreamCacheReader(closed=False, position=0")
    cache.close()
    assert repr(cache).endswith(", closed)")


def test_python_upstream_exception_propagates_unchanged(make_cache: MakeCache) -> None:
    def failing() -> Iterator[pa.RecordBatch]:
        yield make_batches(1)[0]
        raise UpstreamFailure("network went away")

    schema = make_batches(1)[0].schema
    cache = make_cache(pa.RecordBatchReader.from_batches(schema, failing()))
    for _ in range(2):
        reader = cache.reader()
        assert next(reader).num_rows == 5
        with pytest.raises(Exception, match="network went away"):
            next(reader)


def test_export_of_a_fully_ingested_cache_resumes_at_the_reader_position(
    make_cache: MakeCache,
) -> None:
    batches = make_batches(6)
    cache = make_cache(CountingSource(batches))
    cache.ingest_all()
    reader = cache.reader()
    next(reader), next(reader)
    assert_same_batches(collect(reader), batches[2:])
    assert reader.closed
    assert_same_batches(collect(cache), batches)
    assert cache.stats.readers_created == 2


def test_export_streams_lazily_while_batches_can_be_evicted(make_cache: MakeCache) -> None:
    batches = make_batches(6)
    cache = make_cache(CountingSource(batches), max_readers=2)
    cache.ingest_all()
    first, second = cache.reader(), cache.reader()
    exported = pa.RecordBatchReader.from_stream(first)
    assert_same_batches([exported.read_next_batch() for _ in range(3)], batches[:3])
    assert_same_batches([next(second) for _ in range(3)], batches[:3])
    assert cache.stats.evicted_batches == 3
    assert_same_batches(list(exported), batches[3:])


def test_an_interrupted_ingestion_stops_the_stream_cleanly(make_cache: MakeCache) -> None:
    batches = make_batches(4)

    def interrupted() -> Iterator[pa.RecordBatch]:
        yield from batches[:2]
        raise KeyboardInterrupt

    cache = make_cache(pa.RecordBatchReader.from_batches(batches[0].schema, interrupted()))
    reader = cache.reader()
    assert_same_batches([next(reader), next(reader)], batches[:2])
    with pytest.raises(KeyboardInterrupt):
        next(reader)
    # Other readers keep the prefix and get an ordinary error, not the interrupt.
    again = cache.reader()
    assert_same_batches([next(again), next(again)], batches[:2])
    with pytest.raises(RuntimeError, match="batch 2 was interrupted"):
        next(again)


def test_a_recorded_failure_does_not_grow_with_every_read(make_cache: MakeCache) -> None:
    import traceback

    batches = make_batches(2)
    cache = make_cache(CountingSource(batches, fail_at=1))
    depths = []
    for _ in range(20):
        with pytest.raises(Exception, match="upstream broke") as caught:
            cache.reader().read_all()
        depths.append(len(traceback.extract_tb(caught.value.__traceback__)))
    assert depths[-1] == depths[1]


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy])
def test_a_cache_cannot_be_copied(make_cache: MakeCache, copier: Callable[[Any], Any]) -> None:
    cache = make_cache(pa.table({"x": [1, 2]}))
    cache.ingest_all()
    with pytest.raises(TypeError, match="cannot be copied"):
        copier(cache)


@pytest.mark.parametrize("max_readers", [None, 2])
def test_ingested_bytes_is_the_exact_sum_of_nbytes(
    make_cache: MakeCache, max_readers: int | None
) -> None:
    table = pa.table({"x": range(10_000), "s": [str(i) for i in range(10_000)]})
    batches = table.to_batches(max_chunksize=700)  # slices share their buffers
    cache = make_cache(table.to_reader(max_chunksize=700), max_readers=max_readers)
    seen: list[int] = []
    cache.ingest_all(lambda _batches, _rows, nbytes: seen.append(nbytes))
    expected = sum(batch.nbytes for batch in batches)
    assert cache.stats.ingested_bytes == expected == seen[-1]
    assert seen == sorted(seen) and len(seen) == len(batches) + 1
    assert cache.stats.ingested_rows == 10_000
