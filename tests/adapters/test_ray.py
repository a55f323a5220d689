"""Ray Data: ``batchcorder.adapters.ray.read`` on a real local Ray cluster (one per test session)."""

from __future__ import annotations

import gc
import logging
import os
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import CacheFileView, StreamCache
from batchcorder.errors import CacheClosedError

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'batchcorder[ray]'")
pytest.importorskip("ray.data")

from batchcorder.adapters.ray import _datasource_class, read  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")


#: Ray's start-up waits, in seconds, raised for a busy two-core machine (several
#: test suites at once): the GCS connection window (about 20 s by default) and
#: a worker's registration (60 s). Set only where the environment sets none.
_START_UP_WAITS = {
    "RAY_gcs_server_port_wait_time_s": "180",
    "RAY_worker_register_timeout_seconds": "180",
}
#: A start that still times out (the raylet's 30 s wait is fixed) is retried.
_START_ATTEMPTS = 3


def _start_ray() -> None:
    for name, seconds in _START_UP_WAITS.items():
        os.environ.setdefault(name, seconds)
    for attempt in range(1, _START_ATTEMPTS + 1):
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            return
        except Exception:
            ray.shutdown()
            if attempt == _START_ATTEMPTS:
                raise


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local two-CPU Ray cluster for the whole session (Ray starts slowly)."""
    started = not ray.is_initialized()
    if started:
        _start_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def disk_cache(tmp_path: Path) -> Iterator[Callable[..., StreamCache]]:
    """Build disk-mode caches (1-byte hot layer) over a table in 256-row batches."""
    caches: list[StreamCache] = []

    def make(table: pa.Table, batch_rows: int = 256, **options: Any) -> StreamCache:
        cache = StreamCache(
            table.to_reader(max_chunksize=batch_rows),
            **{
                "disk_path": tmp_path,
                "disk_capacity": 1 << 30,
                "memory_capacity": 1,
                **options,
            },
        )
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()


def collect(ds: Any) -> pa.Table:
    """Every row of ``ds`` as one table, in ``id`` order (Ray may reorder blocks)."""
    tables = list(ds.iter_batches(batch_size=None, batch_format="pyarrow"))
    return pa.concat_tables(tables).combine_chunks().sort_by("id")


def consume_splits(splits: list[Any], epochs: int) -> list[list[list[int]]]:
    """Ids each split yields per epoch, every split read by its own thread, as trainers would."""
    seen: list[list[list[int]]] = [[[] for _ in splits] for _ in range(epochs)]
    errors: list[BaseException] = []

    def train(index: int) -> None:
        try:
            for epoch in range(epochs):
                for batch in splits[index].iter_batches(batch_size=None, batch_format="pyarrow"):
                    seen[epoch][index].extend(batch.column("id").to_pylist())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=train, args=(index,)) for index in range(len(splits))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    return seen


# -- in place: a finished disk-mode cache file -----------------------------------


def test_read_in_place_returns_every_row_of_the_cache(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    cache = disk_cache(table)
    ds = read(cache)  # ingests the upstream first
    assert cache.complete_file is not None
    assert ds.count() == table.num_rows
    assert ds.schema().names == table.schema.names
    assert collect(ds).equals(table)
    assert collect(ds).equals(table)  # a dataset reads the file again on every execution


def test_columns_are_pushed_into_the_read(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    cache = disk_cache(table)
    ds = read(cache, columns=["s", "id"])
    assert ds.schema().names == ["s", "id"]
    assert collect(ds).equals(table.select(["s", "id"]))
    # Ray's own projection narrows it further, also inside the read.
    assert collect(ds.select_columns(["id"])).equals(table.select(["id"]))
    assert collect(read(cache).select_columns(["id", "f"])).equals(table.select(["id", "f"]))


def test_read_tasks_cover_batch_ranges_with_metadata_from_the_footer(
    disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    cache = disk_cache(table)
    cache.ingest_all()
    view = CacheFileView(cache)
    source = _datasource_class()(view, None, cache)
    batches = table.to_batches(max_chunksize=256)
    for parallelism in (1, 3, len(batches), 100):
        tasks = source.get_read_tasks(parallelism)
        assert len(tasks) == min(parallelism, len(batches))
        # Rows are left unknown, so that Ray's count() runs the tasks (and so
        # honours close()) instead of answering from this metadata.
        assert all(task.metadata.num_rows is None for task in tasks)
        assert sum(task.metadata.size_bytes for task in tasks) == view.nbytes
        assert {file for task in tasks for file in task.metadata.input_files} == {str(view.path)}
        blocks = [block for task in tasks for block in task()]
        assert pa.concat_tables(blocks).equals(table)
    # A pushed projection: tasks read and report only those columns.
    narrow = source.apply_projection({"id": "id", "b": "b"})
    tasks = narrow.get_read_tasks(2)
    assert all(task.schema.names == ["id", "b"] for task in tasks)
    assert pa.concat_tables([block for task in tasks for block in task()]).equals(
        table.select(["id", "b"])
    )
    assert sum(task.metadata.size_bytes for task in tasks) == narrow.estimate_inmemory_data_size()
    assert narrow.estimate_inmemory_data_size() < source.estimate_inmemory_data_size()
    # No column at all (count()): each block is its batch's rows in Ray's row stub.
    counting = source.apply_projection({})
    blocks = [block for task in counting.get_read_tasks(3) for block in task()]
    assert all(block.schema.names == ["__bsp_stub"] for block in blocks)
    assert sum(block.num_rows for block in blocks) == table.num_rows
    assert sum(block.get_total_buffer_size() for block in blocks) == 0
    # The tasks pickle as the file's path and their range, never the data.
    assert len(pickle.dumps(tasks[0].read_fn)) < 8192


def test_streaming_split_feeds_every_row_once_per_epoch(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    ds = read(disk_cache(table, batch_rows=100))
    for equal in (False, True):
        splits = ds.streaming_split(2, equal=equal)
        for per_split in consume_splits(splits, epochs=2):
            assert all(per_split), "each split gets rows"
            assert sorted(per_split[0] + per_split[1]) == list(range(table.num_rows))
            if equal:
                assert len(per_split[0]) == len(per_split[1])


def test_map_batches_and_iter_batches(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    ds = read(disk_cache(table), columns=["id", "f"], num_cpus=0.5)
    doubled = ds.map_batches(lambda batch: {"twice": batch["id"] * 2}, batch_format="numpy")
    twice = [
        value
        for batch in doubled.iter_batches(batch_size=None, batch_format="numpy")
        for value in batch["twice"].tolist()
    ]
    assert sorted(twice) == [2 * n for n in range(table.num_rows)]
    sizes = [len(batch["id"]) for batch in ds.iter_batches(batch_size=500, batch_format="numpy")]
    assert sum(sizes) == table.num_rows and max(sizes) == 500


def test_a_received_view_is_read_in_place(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    cache = disk_cache(table)
    cache.ingest_all()
    received = pickle.loads(pickle.dumps(cache)).batch_range(2, 5)
    expected = pa.Table.from_batches(table.to_batches(max_chunksize=256)[2:5])
    assert collect(read(received)).equals(expected)


_AFTER_CLOSE = {
    "count": lambda ds: ds.count(),
    "take": lambda ds: ds.take(3),
    "take_all": lambda ds: ds.take_all(),
    "sum": lambda ds: ds.sum("id"),
    "iter_batches": lambda ds: list(ds.iter_batches(batch_size=None)),
    "materialize": lambda ds: ds.materialize(),
    "select_columns.count": lambda ds: ds.select_columns(["id"]).count(),
    "map_batches": lambda ds: ds.map_batches(lambda batch: batch).take_all(),
}


def test_count_is_exact_without_row_metadata(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    from ray.data.expressions import col

    ds = read(disk_cache(table))
    assert ds.count() == table.num_rows
    assert ds.select_columns(["s"]).count() == table.num_rows
    assert ds.limit(7).count() == 7
    assert ds.filter(expr=col("id") < 10).count() == 10
    assert read(disk_cache(table), columns=["f"]).count() == table.num_rows


def test_every_operation_after_close_raises_cache_closed_error(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    cache = disk_cache(table)
    ds = read(cache)
    path = str(cache.complete_file)
    # Ray remembers what it has seen: a count, and the rows of a full iteration.
    assert ds.count() == table.num_rows
    assert sum(len(batch["id"]) for batch in ds.iter_batches()) == table.num_rows
    cache.close()
    for name, operation in _AFTER_CLOSE.items():
        with pytest.raises(CacheClosedError, match="the cache was closed") as caught:
            operation(ds)
        assert path in str(caught.value), name
    assert ds.schema().names == table.schema.names  # the schema is no row
    with pytest.raises(CacheClosedError):
        read(cache)


def test_a_read_task_that_runs_after_close_raises_cache_closed_error(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    """Raised in the Ray worker; Ray's RayTaskError(CacheClosedError) is a CacheClosedError."""
    cache = disk_cache(table)
    cache.ingest_all()
    task = _datasource_class()(CacheFileView(cache), None, cache).get_read_tasks(2)[0]

    @ray.remote
    def rows(task: Any) -> int:
        return sum(block.num_rows for block in task())

    assert ray.get(rows.remote(task), timeout=300) > 0
    cache.close()
    with pytest.raises(CacheClosedError, match="the cache was closed") as caught:
        ray.get(rows.remote(task), timeout=300)
    assert isinstance(caught.value, ray.exceptions.RayTaskError)


def test_a_dataset_of_a_received_view_raises_after_close(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    cache = disk_cache(table)
    cache.ingest_all()
    received = pickle.loads(pickle.dumps(cache))
    ds = read(received)
    assert ds.count() == table.num_rows
    cache.close()
    for operation in (_AFTER_CLOSE["count"], _AFTER_CLOSE["take"], _AFTER_CLOSE["sum"]):
        with pytest.raises(CacheClosedError):
            operation(ds)
    with pytest.raises(CacheClosedError):
        read(received)


def test_the_dataset_keeps_the_cache_alive(ray_cluster: None, tmp_path: Path) -> None:
    """The caller drops its handle, not close(): the dataset holds the cache and reads on."""
    table = pa.table({"id": range(1000), "x": [n / 2 for n in range(1000)]})
    cache = StreamCache(
        table.to_reader(max_chunksize=100), disk_path=tmp_path, disk_capacity=1 << 20
    )
    ds = read(cache)
    path = Path(cache.complete_file or "")
    del cache
    gc.collect()
    assert path.exists()
    assert ds.count() == 1000
    assert ds.sum("id") == sum(range(1000))
    assert collect(ds).equals(table)
    assert ds.select_columns(["x"]).sum("x") == sum(n / 2 for n in range(1000))
    del ds
    # Once the dataset is gone (Ray may hold its plan a little longer), so is the file.
    for _ in range(600):
        gc.collect()
        if not path.exists():
            break
        threading.Event().wait(0.05)
    assert not path.exists()


# -- through the object store: no single finished file ---------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"disk_path": None, "disk_capacity": None, "memory_capacity": None},
        {"write_policy": "on_eviction"},
    ],
    ids=["memory", "on_eviction"],
)
def test_caches_without_a_finished_file_go_through_the_object_store(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table, options: Any
) -> None:
    cache = disk_cache(table, **options)
    assert cache.complete_file is None
    ds = read(cache, columns=["id", "ts", "dec"])
    assert cache.upstream_exhausted and cache.complete_file is None
    cache.close()  # the dataset holds copies in the object store
    assert collect(ds).equals(table.select(["id", "ts", "dec"]))
    assert ds.count() == table.num_rows


def test_dictionary_fields_and_cast_views_go_through_the_object_store(
    ray_cluster: None, disk_cache: Callable[..., StreamCache]
) -> None:
    table = pa.table(
        {"id": range(600), "tag": pa.array([f"t{n % 3}" for n in range(600)]).dictionary_encode()}
    )
    cache = disk_cache(table)
    assert collect(read(cache)).equals(table)
    plain = pa.schema([("id", pa.int32()), ("tag", pa.string())])
    assert collect(read(cache.cast(plain))).equals(table.cast(plain))


def test_an_empty_cache(ray_cluster: None, disk_cache: Callable[..., StreamCache]) -> None:
    empty = pa.table({"id": pa.array([], pa.int64())})
    assert read(disk_cache(empty)).count() == 0
    assert read(StreamCache(empty)).count() == 0


def test_argument_errors(disk_cache: Callable[..., StreamCache], table: pa.Table) -> None:
    cache = disk_cache(table)
    with pytest.raises(TypeError, match=r"cache must be a batchcorder\.StreamCache"):
        read(table)
    with pytest.raises(TypeError, match="columns must be a sequence of str"):
        read(cache, columns="id")
    with pytest.raises(ValueError, match=re.escape("columns ['nope'] are not in")):
        read(cache, columns=["id", "nope"])
    assert cache.ingested_count == 0  # nothing read before the arguments were checked


def test_importing_batchcorder_and_its_adapters_imports_no_ray() -> None:
    code = (
        "import sys, batchcorder, batchcorder.adapters.ray, batchcorder.adapters.duckdb, "
        "batchcorder.adapters.polars, batchcorder.adapters.datafusion\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
