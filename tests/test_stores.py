"""Every store against the store protocol (``batchcorder._storage.base.BatchStore``).

Internal parts under test: ``batchcorder._storage``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis.strategies as st
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from batchcorder._storage import BatchStore, DiskStore, MemoryStore
from batchcorder.errors import CacheClosedError, DiskCapacityError
from tests.conftest import make_batches

SCHEMA = make_batches(1)[0].schema
DICTIONARY = pa.dictionary(pa.int8(), pa.string())
#: The schemas the stores below are made for, by name (SCHEMA unless named here).
SCHEMAS = {"disk-dictionary": SCHEMA.append(pa.field("d", DICTIONARY))}

STORES: dict[str, Callable[[Path], BatchStore]] = {
    "memory": lambda _: MemoryStore(),
    "disk": lambda path: DiskStore(path, SCHEMA, 1 << 30, 1 << 30, "on_insertion"),
    "disk-cold": lambda path: DiskStore(path, SCHEMA, 1, 1 << 30, "on_insertion"),
    "disk-on-eviction": lambda path: DiskStore(path, SCHEMA, 1, 1 << 30, "on_eviction"),
    "disk-dictionary": lambda path: DiskStore(
        path, SCHEMAS["disk-dictionary"], 1, 1 << 30, "on_insertion"
    ),
}


def batches_for(store: BatchStore, count: int) -> list[pa.RecordBatch]:
    """``count`` batches of the schema ``store`` was made for."""
    batches = make_batches(count)
    if getattr(store, "test_schema", SCHEMA) == SCHEMA:
        return batches
    keys = pa.array([f"k{i % 3}" for i in range(batches[0].num_rows)]).dictionary_encode()
    return [batch.append_column("d", keys.cast(DICTIONARY)) for batch in batches]


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BatchStore]:
    built = STORES[request.param](tmp_path / "store")
    built.test_schema = SCHEMAS.get(request.param, SCHEMA)  # type: ignore[attr-defined]
    yield built
    built.close()


def test_appended_batches_read_back_equal_until_dropped(store: BatchStore) -> None:
    batches = batches_for(store, 6)
    for index, batch in enumerate(batches):
        store.append(index, batch)
        assert store.get(index).equals(batch)
    store.finish()
    for _ in range(2):
        assert [store.get(i).equals(b) for i, b in enumerate(batches)] == [True] * 6
    store.drop(0)
    store.drop(0)  # twice is harmless
    with pytest.raises((KeyError, IndexError)):
        store.get(0)
    assert store.get(1).equals(batches[1])
    store.check_file()


def test_accounting_follows_the_batches(store: BatchStore) -> None:
    batches = batches_for(store, 4)
    for index, batch in enumerate(batches):
        store.append(index, batch)
    store.finish()
    assert store.memory_batches + store.disk_batches >= 4
    if store.file_path is None:
        assert store.memory_batches == 4 and store.disk_bytes == 0
        assert store.memory_bytes == sum(batch.get_total_buffer_size() for batch in batches)
    else:
        assert store.disk_bytes == store.file_path.stat().st_size
    for index in range(4):
        store.drop(index)
    assert store.memory_batches == 0 and store.memory_bytes == 0


def test_the_complete_file_is_one_ipc_file_of_every_batch(store: BatchStore) -> None:
    batches = batches_for(store, 3)
    for index, batch in enumerate(batches):
        store.append(index, batch)
    assert store.complete_file is None  # not finished
    store.finish()
    path = store.complete_file
    if path is None:
        return  # memory, on_eviction or the dictionary layout: no single file
    assert pa.ipc.open_file(str(path)).read_all().equals(pa.Table.from_batches(batches))


def test_close_releases_everything_and_refuses_appends(store: BatchStore) -> None:
    batches = batches_for(store, 2)
    store.append(0, batches[0])
    path = store.file_path
    store.close()
    store.close()
    if path is not None:
        assert not path.exists()
    with pytest.raises((CacheClosedError, KeyError, IndexError)):
        store.append(1, batches[1])
        store.get(1)


def test_readers_on_many_threads_see_the_same_batches(store: BatchStore) -> None:
    batches = batches_for(store, 40)
    for index, batch in enumerate(batches):
        store.append(index, batch)
    store.finish()
    failures: list[int] = []

    def read_all() -> None:
        for index, batch in enumerate(batches):
            if not store.get(index).equals(batch):
                failures.append(index)

    threads = [threading.Thread(target=read_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(0, 3000), min_size=0, max_size=6), slack=st.integers(0, 400))
def test_the_file_never_outgrows_disk_capacity(
    tmp_path: Path, sizes: list[int], slack: int
) -> None:
    # The footer is reserved with every batch, from sizes measured on the IPC
    # writer itself: a finished file fits the capacity exactly or better.
    batches = [pa.record_batch({"x": pa.array(range(size), pa.int64())}) for size in sizes]
    schema = pa.schema([("x", pa.int64())])
    probe = pa.BufferOutputStream()
    with pa.ipc.new_file(probe, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    exact = probe.tell()
    for capacity in (exact + slack, max(1, exact - 1 - slack)):
        directory = tmp_path / f"c{capacity}"
        store = DiskStore(directory, schema, 1, capacity, "on_insertion")
        written = 0
        try:
            for index, batch in enumerate(batches):
                store.append(index, batch)
                written += 1
        except DiskCapacityError:
            pass
        store.finish()
        assert store.file_path is not None
        assert store.file_path.stat().st_size <= capacity
        if capacity >= exact:
            assert written == len(batches)  # the bound is exact, not a guess
            assert pa.ipc.open_file(str(store.file_path)).read_all().num_rows == sum(sizes)
        store.close()
