"""The one lifetime of a cache: what keeps its data, what close() ends, what a dead process leaves.

docs/architecture.md ("Lifetime") has the table these tests hold the code to.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import StreamCache
from batchcorder.errors import CacheClosedError

TABLE = pa.table({"x": list(range(1000)), "s": [str(i) for i in range(1000)]})
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="flock and signals are POSIX")


def make_cache(directory: Path | None) -> StreamCache:
    """A cache of TABLE in ten batches: in memory, or on disk with every read from the file."""
    source = TABLE.to_reader(max_chunksize=100)
    if directory is None:
        return StreamCache(source)
    return StreamCache(source, memory_capacity=0, disk_path=directory, disk_capacity=1 << 24)


@pytest.fixture(params=["memory", "disk"])
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    return tmp_path if request.param == "disk" else None


def cache_files(directory: Path | None) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory else []


def mapped(directory: Path | None) -> list[str]:
    """Lines of /proc/self/maps naming a file in ``directory``."""
    if directory is None or not Path("/proc/self/maps").exists():
        return []
    text = Path("/proc/self/maps").read_text()
    return [line for line in text.splitlines() if str(directory) in line]


# -- dropping the handle ends nothing -----------------------------------------


def test_a_reader_keeps_its_cache_alive(directory: Path | None) -> None:
    def only_a_reader() -> Any:
        return make_cache(directory).reader()

    reader = only_a_reader()
    gc.collect()
    assert len(cache_files(directory)) == (1 if directory else 0)
    assert pa.Table.from_batches(list(reader)).equals(TABLE)
    del reader
    gc.collect()
    assert cache_files(directory) == []
    assert mapped(directory) == []


@pytest.mark.parametrize("ingested", [False, True], ids=["lazy", "ingested"])
def test_an_export_keeps_its_cache_alive(directory: Path | None, ingested: bool) -> None:
    cache = make_cache(directory)
    if ingested:
        cache.ingest_all()
    capsule = cache.__arrow_c_stream__()
    del cache
    gc.collect()
    assert pa.RecordBatchReader._import_from_c_capsule(capsule).read_all().equals(TABLE)
    del capsule
    gc.collect()
    assert cache_files(directory) == []
    assert mapped(directory) == []


def test_a_cast_view_keeps_its_cache_alive(directory: Path | None) -> None:
    view = make_cache(directory).cast(pa.schema([("x", pa.float64()), ("s", pa.string())]))
    gc.collect()
    assert pa.table(view).column("x").to_pylist() == [float(i) for i in range(1000)]
    del view
    gc.collect()
    assert cache_files(directory) == []


# -- close() ends every consumer ------------------------------------------------


def test_close_ends_readers_at_their_next_read(directory: Path | None) -> None:
    cache = make_cache(directory)
    reader = cache.reader()
    first = next(reader)
    lazy = pa.RecordBatchReader._import_from_c_capsule(cache.__arrow_c_stream__())
    cache.close()
    assert cache_files(directory) == []
    with pytest.raises(CacheClosedError):
        next(reader)
    with pytest.raises(pa.ArrowInvalid, match="StreamCache is closed"):
        lazy.read_next_batch()  # through the C stream: pyarrow re-raises as ArrowInvalid
    with pytest.raises(CacheClosedError):
        cache.reader()
    assert first.column("x").to_pylist() == list(range(100))  # handed out: still valid
    del first, reader, lazy
    gc.collect()
    assert mapped(directory) == []


def test_close_is_the_same_from_every_thread_of_use(directory: Path | None) -> None:
    cache = make_cache(directory)
    cache.ingest_all()
    readers = [cache.reader() for _ in range(3)]
    next(readers[0])
    cache.close()
    cache.close()  # idempotent
    for reader in readers:
        with pytest.raises(CacheClosedError):
            next(reader)
    with pytest.raises(CacheClosedError):
        cache.ingest_all()


# -- files: where they are, and what a dead process leaves -----------------------


def test_a_relative_disk_path_is_resolved_when_the_cache_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cache = StreamCache(
        TABLE.to_reader(max_chunksize=100), disk_path="spill", disk_capacity=1 << 24
    )
    cache.ingest_all()
    assert cache.disk_file is not None and cache.disk_file.is_absolute()
    monkeypatch.chdir("/")
    assert pa.table(cache).equals(TABLE)
    cache.close()
    assert not (tmp_path / "spill").exists()


def test_memory_capacity_zero_reads_every_batch_from_the_file(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    assert pa.table(cache).equals(TABLE)
    assert cache.stats.memory_batches == 0 and cache.stats.disk_batches == 10
    assert pa.table(cache).equals(TABLE)
    cache.close()


def run(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


_INGEST_AND_WAIT = """
    import sys, time
    import pyarrow as pa
    from batchcorder import StreamCache

    def batches():
        for index in range(1000):
            yield pa.record_batch({"x": list(range(index * 10, index * 10 + 10))})
            if index == 3:
                print("ingesting", flush=True)
                sys.stdin.readline()  # holds the cache mid-ingest until told
    schema = pa.schema([("x", pa.int64())])
    cache = StreamCache(
        pa.RecordBatchReader.from_batches(schema, batches()),
        disk_path=sys.argv[1], disk_capacity=1 << 24,
    )
    cache.ingest_all()
"""


@POSIX_ONLY
@pytest.mark.parametrize("end", ["SIGKILL", "os._exit"])
def test_a_file_left_by_a_dead_process_is_removed_by_the_next_cache(
    tmp_path: Path, end: str
) -> None:
    script = _INGEST_AND_WAIT
    if end == "os._exit":
        script = script.replace("sys.stdin.readline()", "__import__('os')._exit(1)")
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ingesting\n"
        left = cache_files(tmp_path)
        assert len(left) == 1
        if end == "SIGKILL":
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.communicate()
    assert cache_files(tmp_path) == left  # nothing could clean up
    cache = make_cache(tmp_path)  # the next cache in the directory sweeps
    assert cache_files(tmp_path) == [cache.disk_file.name] if cache.disk_file else []
    cache.close()
    assert cache_files(tmp_path) == []


@POSIX_ONLY
def test_a_live_process_file_is_never_removed(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_INGEST_AND_WAIT), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "ingesting\n"
        (theirs,) = cache_files(tmp_path)
        ours = make_cache(tmp_path)
        assert theirs in cache_files(tmp_path)
        ours.close()
        assert cache_files(tmp_path) == [theirs]
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()
        process.communicate()
    assert cache_files(tmp_path) == []  # removed at its exit


def _leave_file(directory: Path) -> Callable[[], None]:
    """A stale-looking file that is not a cache file: never touched by the sweep."""
    other = directory / "batchcorder-notes.arrow"
    other.write_bytes(b"x")
    return other.unlink


def test_the_sweep_touches_only_cache_files(tmp_path: Path) -> None:
    cleanup = _leave_file(tmp_path)
    cache = make_cache(tmp_path)
    assert "batchcorder-notes.arrow" in cache_files(tmp_path)
    cache.close()
    cleanup()


# -- as the reference does ---------------------------------------------------------


def test_a_consumed_reader_says_so_for_its_schema_and_casts() -> None:
    reader = StreamCache(TABLE).reader()
    pa.table(reader)
    for use in (
        lambda: reader.schema,
        reader.__arrow_c_schema__,
        lambda: reader.cast(TABLE.schema),
        lambda: next(reader),
    ):
        with pytest.raises(ValueError, match="already consumed"):
            use()


# -- every consumer kind x {handle dropped, close()} x {memory, disk} ---------------


def _sum_of(rows: Any) -> int:
    return int(sum(value for value in rows if value is not None))


def _duckdb_register(cache: StreamCache, pushdown: bool) -> Any:
    import duckdb

    import batchcorder

    con = duckdb.connect()
    batchcorder.register(con, "t", cache, pushdown=pushdown)
    return lambda: con.sql("SELECT sum(x) FROM t").fetchall()[0][0]


def _datafusion_register(cache: StreamCache) -> Any:
    import datafusion

    import batchcorder

    ctx = datafusion.SessionContext()
    batchcorder.register(ctx, "t", cache)
    return lambda: ctx.sql("SELECT sum(x) AS s FROM t").to_pydict()["s"][0]


def _polars_sql(cache: StreamCache) -> Any:
    import polars as pl

    import batchcorder

    context = pl.SQLContext()
    batchcorder.register(context, "t", cache)
    return lambda: context.execute("SELECT sum(x) AS s FROM t").collect()["s"][0]


def _polars_scan(cache: StreamCache) -> Any:
    import polars as pl

    import batchcorder

    frame = batchcorder.scan(cache)
    return lambda: frame.select(pl.col("x").sum()).collect().item()


def _dataset(make: Callable[[StreamCache], Any]) -> Callable[[StreamCache], Any]:
    def use(cache: StreamCache) -> Any:
        data = make(cache)
        return lambda: _sum_of(data.to_table(columns=["x"]).column("x").to_pylist())

    return use


def _batchcorder_dataset(cache: StreamCache) -> Any:
    import batchcorder

    return batchcorder.dataset(cache)


def _duckdb_dataset(cache: StreamCache) -> Any:
    from batchcorder.adapters import duckdb as duckdb_adapter

    return duckdb_adapter.dataset(cache)


def _datafusion_dataset(cache: StreamCache) -> Any:
    from batchcorder.adapters import datafusion as datafusion_adapter

    return datafusion_adapter.dataset(cache)


def _reader(cache: StreamCache) -> Any:
    reader = cache.reader()
    return lambda: _sum_of(value for batch in reader for value in batch.column("x").to_pylist())


def _ingested_export(cache: StreamCache) -> Any:
    # A fully ingested cache hands its batches over at export, checked at each read.
    cache.ingest_all()
    stream = pa.RecordBatchReader.from_stream(cache)
    return lambda: _sum_of(stream.read_all().column("x").to_pylist())


def _cast_view(cache: StreamCache) -> Any:
    view = cache.cast(pa.schema([("x", pa.float64()), ("s", pa.string())]))
    return lambda: _sum_of(pa.table(view).column("x").to_pylist())


#: consumer -> (makes a query from a cache, whether the consumer itself holds the
#: cache's batches after close() until it is dropped: a dataset handed to the user)
CONSUMERS: dict[str, tuple[Callable[[StreamCache], Any], bool]] = {
    "reader": (_reader, False),
    "C stream of an ingested cache": (_ingested_export, False),
    "cast view": (_cast_view, False),
    "batchcorder.dataset": (_dataset(_batchcorder_dataset), True),
    "adapters.duckdb.dataset": (_dataset(_duckdb_dataset), True),
    "adapters.datafusion.dataset": (_dataset(_datafusion_dataset), True),
    "duckdb register": (lambda cache: _duckdb_register(cache, True), False),
    "duckdb register, no pushdown": (lambda cache: _duckdb_register(cache, False), False),
    "datafusion register": (_datafusion_register, False),
    "polars SQLContext": (_polars_sql, False),
    "polars scan": (_polars_scan, False),
}
EXPECTED_SUM = sum(range(1000))
#: Consumers that read the cache once.
ONE_PASS = {"reader", "C stream of an ingested cache"}


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_a_consumer_keeps_the_data_when_the_handle_is_dropped(
    directory: Path | None, consumer: str
) -> None:
    make, _ = CONSUMERS[consumer]
    query = make(make_cache(directory))  # the only StreamCache handle is gone
    gc.collect()
    assert query() == EXPECTED_SUM
    del query
    gc.collect()
    assert cache_files(directory) == []
    assert mapped(directory) == []


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_close_ends_every_consumer_alike(directory: Path | None, consumer: str) -> None:
    make, holds_batches = CONSUMERS[consumer]
    cache = make_cache(directory)
    query = make(cache)
    if consumer not in ONE_PASS:
        assert query() == EXPECTED_SUM
    cache.close()
    assert cache_files(directory) == []
    with pytest.raises(Exception, match="StreamCache is closed") as raised:
        query()
    assert isinstance(raised.value, (CacheClosedError, pa.ArrowException)) or (
        "CacheClosedError" in str(raised.value)  # wrapped by the engine
    )
    del raised  # its traceback holds the consumer's frames
    gc.collect()
    if not holds_batches:
        assert mapped(directory) == []  # the engine keeps no map of a closed cache
    del query
    gc.collect()
    assert mapped(directory) == []


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_a_consumer_of_a_closed_cache_says_it_is_closed(
    directory: Path | None, consumer: str
) -> None:
    make, _ = CONSUMERS[consumer]
    cache = make_cache(directory)
    cache.ingest_all()
    cache.close()
    assert cache.stats.ingested_rows == 1000  # the counters outlive the data
    assert cache.stats.ingested_bytes > 0
    with pytest.raises(Exception, match="StreamCache is closed") as raised:
        make(cache)()  # at once, or at the first query
    assert isinstance(raised.value, (CacheClosedError, pa.ArrowException)) or (
        "CacheClosedError" in str(raised.value)
    )


def test_close_ends_flight_streams_and_descriptions(directory: Path | None) -> None:
    import threading

    from pyarrow import flight

    from batchcorder.flight import serve

    gate = threading.Event()

    def gated() -> Any:
        yield from TABLE.to_batches(max_chunksize=100)[:1]
        gate.wait(timeout=60)  # the rest only once the cache is closed
        yield from TABLE.to_batches(max_chunksize=100)[1:]

    source = pa.RecordBatchReader.from_batches(TABLE.schema, gated())
    options = {} if directory is None else {"disk_path": directory, "disk_capacity": 1 << 24}
    cache = StreamCache(source, **options)
    server = serve(cache, "grpc://127.0.0.1:0")
    try:
        client = flight.connect(server.locations[0])
        descriptor = flight.FlightDescriptor.for_path("cache")
        ticket = client.get_flight_info(descriptor).endpoints[0].ticket
        stream = client.do_get(ticket)
        assert stream.read_chunk().data.num_rows == 100
        cache.close()
        gate.set()
        for use in (
            stream.read_all,
            lambda: client.do_get(ticket).read_all(),
            lambda: client.get_flight_info(descriptor),
        ):
            with pytest.raises(flight.FlightError, match="StreamCache is closed"):
                use()
        client.close()
    finally:
        gate.set()
        server.close()
    assert cache_files(directory) == []
