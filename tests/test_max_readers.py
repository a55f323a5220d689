"""max_readers: a hard cap on readers, and eviction behind the slowest one."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest

from batchcorder import StreamCache
from tests.conftest import CountingSource, make_batches
from tests.test_cache import assert_same_batches

MakeCache = Callable[..., StreamCache]


def test_cap_counts_every_reader_ever_created(make_cache: MakeCache) -> None:
    cache = make_cache(CountingSource(make_batches(3)), max_readers=2)
    first = cache.reader()
    first.close()
    del first
    pa.table(cache)  # __arrow_c_stream__ is a reader too
    with pytest.raises(ValueError, match="Maximum number of readers"):
        cache.reader()
    with pytest.raises(ValueError, match="Maximum number of readers"):
        cache.__arrow_c_stream__()
    assert cache.stats.readers_created == 2


def test_no_eviction_until_every_reader_exists(make_cache: MakeCache) -> None:
    batches = make_batches(6)
    cache = make_cache(CountingSource(batches), max_readers=3)
    assert_same_batches(list(cache.reader()), batches)
    assert_same_batches(list(cache.reader()), batches)
    assert cache.stats.evicted_batches == 0
    late = cache.reader()
    assert_same_batches(list(late), batches)
    assert cache.stats.evicted_batches == 6


def test_batches_behind_the_slowest_reader_are_freed(make_cache: MakeCache, mode: str) -> None:
    batches = make_batches(10, rows=50)
    cache = make_cache(CountingSource(batches), max_readers=2)
    fast, slow = cache.reader(), cache.reader()
    fast_seen = [next(fast) for _ in range(6)]
    slow_seen = [next(slow) for _ in range(2)]
    stats = cache.stats
    assert stats.evicted_batches == 2
    if mode != "disk-1-byte-hot":
        assert stats.memory_batches == 4
    slow_seen += [next(slow) for _ in range(4)]
    assert cache.stats.evicted_batches == 6
    fast_seen += list(fast)
    slow_seen += list(slow)
    assert_same_batches(fast_seen, batches)
    assert_same_batches(slow_seen, batches)
    assert cache.stats.memory_batches == 0
    if mode != "memory":
        # Disk bytes stay until close: the file is append-only.
        assert cache.stats.disk_bytes > 0


def test_reading_from_start_after_eviction_raises(make_cache: MakeCache) -> None:
    cache = make_cache(CountingSource(make_batches(4)), max_readers=1)
    reader = cache.reader()
    next(reader), next(reader)
    assert cache.stats.evicted_batches >= 1
    with pytest.raises(ValueError, match="Maximum number of readers"):
        cache.reader(from_start=True)


def test_closed_readers_stop_holding_batches(make_cache: MakeCache) -> None:
    batches = make_batches(6)
    cache = make_cache(CountingSource(batches), max_readers=2)
    idle = cache.reader()
    busy = cache.reader()
    for _ in range(4):
        next(busy)
    assert cache.stats.evicted_batches == 0  # idle is still at batch 0
    idle.close()
    next(busy)
    assert cache.stats.evicted_batches == 5
    assert_same_batches(list(busy), batches[5:])
