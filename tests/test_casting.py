"""Cast views: a target schema with other field names fails when read, as in 0.1.3."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa
import pytest

from batchcorder import CastingStreamCache, StreamCache
from tests.conftest import CountingSource, make_batches

MakeCache = Callable[..., StreamCache]

MESSAGE = "Target schema's field names are not matching the table's field names: "
RENAMED = pa.schema([("other", pa.int64()), ("value", pa.float64()), ("label", pa.string())])


def test_other_field_names_fail_at_read_time_not_at_cast(make_cache: MakeCache) -> None:
    source = CountingSource(make_batches(3))
    cache = make_cache(source)
    view = cache.cast(RENAMED)
    assert isinstance(view, CastingStreamCache)
    assert view.schema == RENAMED
    reads: list[Callable[[], object]] = [
        view.reader,
        lambda: next(iter(view)),
        view.__arrow_c_stream__,
        lambda: pa.table(view),
        lambda: pa.RecordBatchReader.from_stream(view),
    ]
    for read in reads:
        with pytest.raises(ValueError) as raised:
            read()
        assert str(raised.value) == (f"{MESSAGE}{cache.schema.names}, {RENAMED.names}")
    # The check comes before a reader of the cache is taken: nothing was read.
    assert cache.stats.readers_created == 0 and source.pulled == 0
    # The cache itself, and a view with the right names, are unaffected.
    assert pa.table(cache).num_rows == 15
    assert pa.table(view.cast(cache.schema)).num_rows == 15


def test_a_failed_cast_read_takes_no_reader_slot() -> None:
    cache = StreamCache(pa.table({"x": [1, 2]}), max_readers=1)
    with pytest.raises(ValueError, match="field names are not matching"):
        cache.cast(pa.schema([("y", pa.int64())])).reader()
    assert pa.table(cache).num_rows == 2


def test_a_target_that_is_not_a_schema_fails_at_once(make_cache: MakeCache) -> None:
    cache = make_cache(CountingSource(make_batches(1)))
    with pytest.raises(TypeError, match=r"pyarrow\.Schema"):
        cache.cast("not a schema")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pyarrow\.Schema"):
        cache.cast(cache.schema).cast(pa.int64())  # type: ignore[arg-type]


def test_an_engine_registers_the_view_and_fails_at_execution() -> None:
    # A client may register the cast view first and expect the error from the query.
    cache = StreamCache(pa.table({"x": [1, 2]}))
    view = cache.cast(pa.schema([("y", pa.int64())]))
    con = duckdb.connect()
    con.register("t", view)
    with pytest.raises(duckdb.Error, match="field names are not matching"):
        con.sql("SELECT * FROM t").fetchall()


def test_a_cast_view_stands_in_for_its_cache() -> None:
    from batchcorder import Replayable

    cache = StreamCache(pa.table({"x": [1, 2, 3]}).to_reader(max_chunksize=1))
    view = cache.cast(pa.schema([("x", pa.float64())]))
    assert isinstance(view, Replayable) and isinstance(cache, Replayable)
    assert view.ingest_all() == 3 and view.stats.ingested_batches == 3
    assert view.stats == cache.stats and not view.closed
    view.close()
    assert cache.closed and view.closed
