"""Ray Data: ``batchcorder.adapters.ray.read`` on a real local Ray cluster (one per test session)."""

from __future__ import annotations

import logging
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

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'batchcorder[ray]'")
pytest.importorskip("ray.data")

from batchcorder.adapters.ray import _datasource_class, read  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local two-CPU Ray cluster for the whole session (Ray starts slowly)."""
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
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
        assert sum(task.metadata.num_rows for task in tasks) == table.num_rows
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


def test_reading_after_close_is_a_clear_error(
    ray_cluster: None, disk_cache: Callable[..., StreamCache], table: pa.Table
) -> None:
    cache = disk_cache(table)
    ds = read(cache)
    path = cache.complete_file
    cache.close()
    with pytest.raises(ValueError, match="StreamCache is closed") as caught:
        ds.take_all()
    assert str(path) in str(caught.value)
    with pytest.raises(ValueError, match="closed"):
        read(cache)


def test_the_dataset_keeps_the_cache_alive(ray_cluster: None, tmp_path: Path) -> None:
    table = pa.table({"id": range(1000)})
    cache = StreamCache(
        table.to_reader(max_chunksize=100), disk_path=tmp_path, disk_capacity=1 << 20
    )
    ds = read(cache)
    path = Path(cache.complete_file or "")
    del cache
    assert path.exists()
    assert collect(ds).equals(table)


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


def test_readme_ray_example(ray_cluster: None, tmp_path: Path) -> None:
    """The README's Ray Data example (a ``py`` block: it needs Ray, which the README tests lack)."""
    blocks = re.findall(r"```py\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    found = [block for block in blocks if "batchcorder.adapters.ray" in block]
    assert len(found) == 1
    exec(compile(found[0], "README.md Ray Data example", "exec"), {"__name__": "readme_ray"})
