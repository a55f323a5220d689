"""Disk mode: the cache file, its safety, its capacity and its format.

Internal parts under test: ``batchcorder._storage``.
"""

from __future__ import annotations

import itertools
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from batchcorder import DiskCapacityError, StreamCache
from tests.conftest import CountingSource, make_batches
from tests.test_cache import assert_same_batches, rich_batches


def disk_cache(source: object, directory: Path, **kwargs: object) -> StreamCache:
    options: dict[str, object] = {"disk_path": directory, "disk_capacity": 1 << 30, **kwargs}
    return StreamCache(source, **options)  # type: ignore[arg-type]


def test_cache_file_is_private_and_removed_on_close(tmp_path: Path) -> None:
    cache = disk_cache(CountingSource(make_batches(3)), tmp_path)
    cache.ingest_all()
    path = cache.disk_file
    assert path is not None and path.parent == tmp_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]
    cache.close()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_cache_file_is_removed_when_the_cache_is_garbage_collected(tmp_path: Path) -> None:
    cache = disk_cache(CountingSource(make_batches(3)), tmp_path)
    cache.ingest_all()
    path = cache.disk_file
    assert path is not None and path.exists()
    del cache
    assert not path.exists()


def test_never_follows_a_planted_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    victim = tmp_path / "victim"
    victim.write_text("precious")
    fixed = uuid.UUID(int=7)
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    planted = tmp_path / "cache" / f"batchcorder-{fixed.hex}.arrow"
    planted.parent.mkdir()
    planted.symlink_to(victim)
    with pytest.raises(FileExistsError):
        disk_cache(CountingSource(make_batches(1)), planted.parent)
    assert victim.read_text() == "precious"


def test_finished_file_is_a_valid_arrow_ipc_file(tmp_path: Path) -> None:
    batches = make_batches(6)
    cache = disk_cache(CountingSource(batches), tmp_path)
    cache.ingest_all()
    path = cache.disk_file
    assert path is not None
    expected = pa.Table.from_batches(batches)
    with pa.memory_map(str(path)) as source:
        assert pa.ipc.open_file(source).read_all().equals(expected)

    import polars as pl

    assert pl.scan_ipc(path).collect().to_arrow().equals(pl.from_arrow(expected).to_arrow())

    import datafusion

    ctx = datafusion.SessionContext()
    ctx.register_arrow("cached", str(path))
    assert ctx.sql("select sum(id) as s from cached").to_pydict() == {"s": [sum(range(30))]}
    cache.close()


@pytest.mark.parametrize("hot_bytes", [1, 1 << 30])
def test_capacity_is_enforced_before_writing_and_the_prefix_stays(
    tmp_path: Path, hot_bytes: int
) -> None:
    batches = make_batches(20, rows=100)
    probe = disk_cache(CountingSource(batches[:5]), tmp_path / "probe")
    probe.ingest_all()
    five_batches = probe.stats.disk_bytes
    probe.close()

    cache = disk_cache(
        CountingSource(batches),
        tmp_path / "real",
        disk_capacity=five_batches + 1000,
        memory_capacity=hot_bytes,
    )
    reader = cache.reader()
    got = []
    with pytest.raises(DiskCapacityError, match=f"disk_capacity={five_batches + 1000}") as caught:
        for batch in reader:
            got.append(batch)
    assert caught.value.errno is not None
    assert 5 <= len(got) < 20
    assert cache.stats.disk_bytes <= five_batches + 1000
    assert cache.disk_file is not None
    assert cache.disk_file.stat().st_size <= five_batches + 1000
    assert_same_batches(got, batches[: len(got)])
    again = cache.reader()
    assert_same_batches([next(again) for _ in got], got)
    with pytest.raises(DiskCapacityError):
        next(again)
    cache.close()


@pytest.mark.parametrize("make", [rich_batches, lambda: make_batches(8, rows=50)])
def test_file_never_grows_past_the_capacity(tmp_path: Path, make: object) -> None:
    batches = make()  # type: ignore[operator]
    full = disk_cache(CountingSource(batches), tmp_path / "full")
    full.ingest_all()
    needed = full.stats.disk_bytes
    full.close()
    for capacity in range(needed // 4, needed + 2048, max(1, needed // 40)):
        cache = disk_cache(
            CountingSource(batches), tmp_path / str(capacity), disk_capacity=capacity
        )
        try:
            cache.ingest_all()
        except DiskCapacityError:
            assert capacity < needed + 1024, "the estimate refused a batch that had room"
        else:
            assert_same_batches(list(cache.reader()), batches)
        assert cache.disk_file is not None
        assert cache.disk_file.stat().st_size <= capacity
        cache.close()


def test_on_eviction_writes_only_what_leaves_the_hot_layer(tmp_path: Path) -> None:
    batches = make_batches(10, rows=100)
    last_three = sum(batch.get_total_buffer_size() for batch in batches[-3:])
    cache = disk_cache(
        CountingSource(batches), tmp_path, write_policy="on_eviction", memory_capacity=last_three
    )
    assert_same_batches(list(cache.reader()), batches)
    stats = cache.stats
    assert stats.memory_batches == 3
    assert stats.disk_batches == 7
    assert stats.memory_bytes == last_three
    assert_same_batches(list(cache.reader()), batches)
    path = cache.disk_file
    assert path is not None
    assert_same_batches(pa.ipc.open_file(str(path)).read_all().to_batches(), batches[:7])
    cache.close()


def test_on_eviction_keeps_batches_it_could_not_write(tmp_path: Path) -> None:
    batches = make_batches(10, rows=100)
    cache = disk_cache(
        CountingSource(batches),
        tmp_path,
        write_policy="on_eviction",
        memory_capacity=1,
        disk_capacity=1500,
    )
    with pytest.raises(DiskCapacityError):
        cache.ingest_all()
    got: list[pa.RecordBatch] = []
    reader = cache.reader()
    while True:
        try:
            got.append(next(reader))
        except DiskCapacityError:
            break
    assert_same_batches(got, batches[: len(got)])
    cache.close()


def test_hot_layer_stays_within_memory_capacity(tmp_path: Path) -> None:
    batches = make_batches(50, rows=200)
    one_batch = batches[0].get_total_buffer_size()
    cache = disk_cache(CountingSource(batches), tmp_path, memory_capacity=4 * one_batch)
    reader = cache.reader()
    for batch, want in zip(reader, batches, strict=True):
        assert batch.equals(want)
        assert cache.stats.memory_bytes <= 4 * one_batch
    assert 3 <= cache.stats.memory_batches <= 4
    cache.close()


def test_shared_buffers_are_counted_once(tmp_path: Path) -> None:
    table = pa.table({"x": pa.array(range(100_000), pa.int64())})
    slices = table.to_batches(max_chunksize=1000)
    assert len(slices) == 100
    whole = table.column("x").chunks[0].buffers()[1].size
    memory = StreamCache(table.to_reader(max_chunksize=1000))
    memory.ingest_all()
    assert memory.stats.memory_bytes == whole
    disk = disk_cache(table.to_reader(max_chunksize=1000), tmp_path, memory_capacity=2 * whole)
    disk.ingest_all()
    assert disk.stats.memory_batches == 100
    assert disk.stats.memory_bytes == whole
    assert pa.Table.from_batches(list(disk.reader())).equals(table)
    memory.close()
    disk.close()


def test_cold_batches_are_views_of_the_file(tmp_path: Path) -> None:
    batches = make_batches(4, rows=1000)
    cache = disk_cache(CountingSource(batches), tmp_path, memory_capacity=1)
    cache.ingest_all()
    path = cache.disk_file
    assert path is not None
    size = path.stat().st_size
    replayed = list(cache.reader())
    assert_same_batches(replayed, batches)
    with Path("/proc/self/maps").open() as maps:
        mapped = [line for line in maps if str(path) in line]
    assert mapped, "the cache file is not memory-mapped"
    starts = [int(line.split("-")[0], 16) for line in mapped]
    for batch in replayed:
        address = batch.column("id").buffers()[1].address
        assert any(start <= address < start + size for start in starts)
    cache.close()


def test_dictionary_schema_round_trips_on_disk(tmp_path: Path) -> None:
    batches = rich_batches()
    cache = disk_cache(CountingSource(batches), tmp_path, memory_capacity=1)
    assert_same_batches(list(cache.reader()), batches)
    assert_same_batches(list(cache.reader()), batches)
    cache.close()


@pytest.mark.parametrize("policy", ["on_insertion", "on_eviction"])
def test_a_failing_write_is_reported_and_the_prefix_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    import errno

    from batchcorder._storage import ipc

    batches = make_batches(6, rows=50)
    real_append = ipc._FileLayout.append
    calls = {"count": 0}

    def flaky_append(self: ipc._FileLayout, batch: pa.RecordBatch) -> tuple[int, int]:
        calls["count"] += 1
        if calls["count"] == 3:
            raise OSError(errno.EIO, "injected write failure")
        return real_append(self, batch)

    monkeypatch.setattr(ipc._FileLayout, "append", flaky_append)
    cache = disk_cache(CountingSource(batches), tmp_path, memory_capacity=1, write_policy=policy)
    path = cache.disk_file
    got: list[pa.RecordBatch] = []
    with pytest.raises(OSError, match="injected write failure"):
        for batch in cache.reader():
            got.append(batch)
    assert_same_batches(got, batches[: len(got)])
    replay = cache.reader()
    assert_same_batches([next(replay) for _ in got], got)
    with pytest.raises(OSError, match="injected write failure"):
        next(replay)
    cache.close()
    assert path is not None and not path.exists()


DICTIONARY_SCHEMA = pa.schema([("d", pa.dictionary(pa.int32(), pa.string()))])


def dictionary_batches(count: int) -> list[pa.RecordBatch]:
    return [
        pa.record_batch([pa.array(["a", "b", "a"]).dictionary_encode()], schema=DICTIONARY_SCHEMA)
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "policy"), [(0, "on_insertion"), (0, "on_eviction"), (3, "on_eviction")]
)
def test_a_file_with_no_batch_written_ends_cleanly(tmp_path: Path, count: int, policy: str) -> None:
    # Nothing reaches the file (an empty stream, or every batch still hot).
    for schema, batches in [
        (DICTIONARY_SCHEMA, dictionary_batches(count)),
        (make_batches(1)[0].schema, make_batches(count)),
    ]:
        directory = tmp_path / f"{schema.names[0]}-{policy}"
        source = pa.RecordBatchReader.from_batches(schema, iter(batches))
        with disk_cache(source, directory, write_policy=policy, disk_capacity=64) as cache:
            assert pa.table(cache).num_rows == sum(batch.num_rows for batch in batches)
            assert pa.table(cache).num_rows == sum(batch.num_rows for batch in batches)
            assert cache.disk_file is not None
            assert cache.disk_file.stat().st_size <= 64


class _DictionaryExtension(pa.ExtensionType):
    def __init__(self) -> None:
        super().__init__(pa.dictionary(pa.int32(), pa.string()), "batchcorder.test.dict")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(
        cls, storage_type: pa.DataType, serialized: bytes
    ) -> _DictionaryExtension:
        return _DictionaryExtension()


def test_dictionaries_inside_extension_types_round_trip(tmp_path: Path) -> None:
    extension = _DictionaryExtension()
    pa.register_extension_type(extension)
    try:
        schema = pa.schema([("e", extension)])
        batches = [
            pa.record_batch(
                [pa.ExtensionArray.from_storage(extension, pa.array([w]).dictionary_encode())],
                schema=schema,
            )
            for w in ("a", "b", "c")
        ]
        source = pa.RecordBatchReader.from_batches(schema, iter(batches))
        with disk_cache(source, tmp_path, memory_capacity=1) as cache:
            assert_same_batches(list(cache.reader()), batches)
    finally:
        pa.unregister_extension_type("batchcorder.test.dict")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_cold_reads_behind_the_writer_hold_no_descriptor(tmp_path: Path) -> None:
    batches = [pa.record_batch({"x": pa.array(range(i * 100, i * 100 + 100))}) for i in range(300)]
    cache = disk_cache(CountingSource(batches), tmp_path, memory_capacity=1)
    before = len(list(Path("/proc/self/fd").iterdir()))
    leader, follower = cache.reader(), cache.reader()
    kept = []
    for _ in batches:
        next(leader)  # pulls batch i: written, then evicted from the 1-byte hot layer
        kept.append(next(follower))  # reads batch i from the growing file
    assert len(list(Path("/proc/self/fd").iterdir())) - before < 10
    assert_same_batches(kept, batches)
    cache.close()


def test_a_failed_spill_keeps_older_batches_and_drops_the_new_one(tmp_path: Path) -> None:
    batches = [pa.record_batch({"x": pa.array(range(i * 1000, i * 1000 + 1000))}) for i in range(4)]
    one_batch = batches[0].get_total_buffer_size()
    cache = disk_cache(
        CountingSource(batches),
        tmp_path,
        disk_capacity=one_batch + 1000,
        memory_capacity=one_batch,
        write_policy="on_eviction",
    )
    with pytest.raises(DiskCapacityError):
        cache.ingest_all()
    assert cache.ingested_count == 2
    assert cache.stats.memory_bytes <= one_batch
    assert_same_batches(list(itertools.islice(cache.reader(), 2)), batches[:2])
    cache.close()
