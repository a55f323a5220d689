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
