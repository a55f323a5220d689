"""Property: any interleaving of operations yields exactly the source's batches."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchcorder import StreamCache
from tests.conftest import MODES, CountingSource, make_batches, mode_kwargs

# An operation: ("new", from_start), ("read", reader slot, how many), ("ingest_all",)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.booleans()),
        st.tuples(st.just("read"), st.integers(0, 7), st.integers(1, 4)),
        st.tuples(st.just("ingest_all")),
        st.tuples(st.just("drain"), st.integers(0, 7)),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(MODES),
    batch_count=st.integers(0, 12),
    rows=st.integers(0, 4),
    steps=operations,
)
def test_any_interleaving_replays_the_source(
    mode: str, batch_count: int, rows: int, steps: list[tuple]
) -> None:
    batches = make_batches(batch_count, rows=rows)
    schema = make_batches(1)[0].schema
    source = CountingSource(batches, schema=schema)
    with tempfile.TemporaryDirectory() as directory:
        cache = StreamCache(source, **mode_kwargs(mode, Path(directory)))
        # Each reader with the index of the batch it must return next.
        readers: list[tuple[object, int, list[pa.RecordBatch]]] = []
        for step in steps:
            if step[0] == "new":
                start = 0 if step[1] else cache.ingested_count
                readers.append((cache.reader(from_start=step[1]), start, []))
            elif step[0] == "read" and readers:
                reader, start, seen = readers[step[1] % len(readers)]
                for _ in range(step[2]):
                    batch = next(reader, None)  # type: ignore[call-overload]
                    if batch is None:
                        break
                    seen.append(batch)
            elif step[0] == "drain" and readers:
                reader, start, seen = readers[step[1] % len(readers)]
                seen.extend(reader)  # type: ignore[arg-type]
            elif step[0] == "ingest_all":
                assert cache.ingest_all() == batch_count
            assert cache.ingested_count <= batch_count
            assert source.pulled == cache.ingested_count
        for reader, start, seen in readers:
            seen.extend(reader)  # type: ignore[arg-type]
            expected = batches[start:]
            assert len(seen) == len(expected)
            assert all(got.equals(want) for got, want in zip(seen, expected, strict=True))
        assert pa.Table.from_batches(list(cache.reader()), schema=schema).equals(
            pa.Table.from_batches(batches, schema=schema)
        )
        assert source.pulled == batch_count
        cache.close()
        assert list(Path(directory).rglob("*.arrow")) == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(MODES),
    batch_count=st.integers(0, 10),
    max_readers=st.integers(1, 4),
    steps=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), max_size=25),
)
def test_max_readers_never_loses_a_promised_batch(
    mode: str, batch_count: int, max_readers: int, steps: list[tuple[int, int]]
) -> None:
    batches = make_batches(batch_count, rows=2)
    schema = make_batches(1)[0].schema
    with tempfile.TemporaryDirectory() as directory:
        cache = StreamCache(
            CountingSource(batches, schema=schema),
            max_readers=max_readers,
            **mode_kwargs(mode, Path(directory)),
        )
        readers = [cache.reader() for _ in range(max_readers)]
        seen: list[list[pa.RecordBatch]] = [[] for _ in readers]
        for slot, count in steps:
            index = slot % max_readers
            for _ in range(count):
                batch = next(readers[index], None)
                if batch is None:
                    break
                seen[index].append(batch)
            # Exactly the batches behind the slowest reader are gone.
            slowest = min(len(got) for got in seen)
            assert cache.stats.evicted_batches == slowest
            assert cache.stats.memory_batches <= cache.ingested_count - slowest
        for index, reader in enumerate(readers):
            seen[index].extend(reader)
            assert len(seen[index]) == batch_count
            assert all(a.equals(b) for a, b in zip(seen[index], batches, strict=True))
        assert cache.stats.memory_batches == 0
        cache.close()
