"""Sending a finished disk-mode cache to other processes: pickling, CacheFileView, worker pools."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchcorder import CacheFileView, StreamCache
from batchcorder.errors import CacheClosedError, CacheFileError
from tests.conftest import CountingSource, make_batches

TRAINING_PAGE = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "training.md"


@pytest.fixture
def finished_cache(tmp_path: Path) -> Iterator[Callable[..., StreamCache]]:
    """Build disk-mode caches over ``make_batches(count)``, ingested; all closed after the test."""
    caches: list[StreamCache] = []

    def build(count: int = 6, rows: int = 5, **options: Any) -> StreamCache:
        cache = StreamCache(
            CountingSource(make_batches(count, rows)),
            **{"disk_path": tmp_path / "cache", "disk_capacity": 1 << 30, **options},
        )
        caches.append(cache)
        cache.ingest_all()
        return cache

    yield build
    for cache in caches:
        cache.close()


def table_of(count: int, rows: int = 5) -> pa.Table:
    return pa.Table.from_batches(make_batches(count, rows))


# -- pickling a cache ----------------------------------------------------------


@pytest.mark.parametrize("hot", [1, 1 << 30], ids=["cold", "hot"])
def test_a_finished_disk_cache_pickles_as_a_view_of_its_file(
    finished_cache: Callable[..., StreamCache], hot: int
) -> None:
    cache = finished_cache(6, memory_capacity=hot)
    view = pickle.loads(pickle.dumps(cache))
    assert isinstance(view, CacheFileView)
    assert view.path == cache.complete_file
    assert (view.start, view.stop, view.num_batches, view.num_rows) == (0, 6, 6, 30)
    assert view.schema == cache.schema
    assert pa.table(view).equals(table_of(6))
    for index, expected in enumerate(make_batches(6)):
        assert view.batch(index).equals(expected)
    assert view.batch(-1).equals(make_batches(6)[-1])
    # The cache itself is untouched and still replays.
    assert pa.table(cache).equals(table_of(6))


def test_a_view_replays_like_a_cache(finished_cache: Callable[..., StreamCache]) -> None:
    view = CacheFileView(finished_cache(4))
    expected = table_of(4)
    for _ in range(3):
        assert pa.table(view).equals(expected)  # a fresh C stream each time
        assert pa.Table.from_batches(list(view)).equals(expected)
        assert view.reader().read_all().equals(expected)
    assert pa.RecordBatchReader.from_stream(view).schema == expected.schema
    assert pa.schema(view) == expected.schema
    assert view.nbytes == sum(batch.get_total_buffer_size() for batch in make_batches(4))


def test_view_batches_are_views_of_the_file_not_copies(
    finished_cache: Callable[..., StreamCache],
) -> None:
    cache = finished_cache(8, rows=10_000)
    before = pa.total_allocated_bytes()
    view = pickle.loads(pickle.dumps(cache))
    batches = [view.batch(index) for index in range(view.num_batches)]
    table = pa.table(view)
    assert sum(batch.nbytes for batch in batches) > 1 << 20
    assert table.num_rows == 80_000
    assert pa.total_allocated_bytes() - before < 64 << 10


def test_threads_read_one_view_concurrently(finished_cache: Callable[..., StreamCache]) -> None:
    view = pickle.loads(pickle.dumps(finished_cache(40, rows=50)))  # nothing decoded yet
    expected = table_of(40, rows=50)

    def replay(turn: int) -> bool:
        if turn % 2:
            return pa.table(view).equals(expected)
        order = range(view.num_batches - 1, -1, -1)
        return all(view.batch(index).equals(expected.to_batches(50)[index]) for index in order)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(replay, range(16)))


def test_a_cast_view_of_a_finished_cache_pickles(
    finished_cache: Callable[..., StreamCache],
) -> None:
    cache = finished_cache(3)
    target = pa.schema([("id", pa.float64()), ("value", pa.float64()), ("label", pa.string())])
    received = pickle.loads(pickle.dumps(cache.cast(target)))
    assert pa.table(received).equals(table_of(3).cast(target))


def test_batch_index_errors(finished_cache: Callable[..., StreamCache]) -> None:
    view = CacheFileView(finished_cache(3))
    with pytest.raises(IndexError, match="batch index 3 out of range for a view of 3 batches"):
        view.batch(3)
    with pytest.raises(IndexError, match="-4"):
        view.batch(-4)
    with pytest.raises(TypeError, match="index must be an int, got str"):
        view.batch("1")  # type: ignore[arg-type]


def test_batch_ranges_pickle_as_their_range(finished_cache: Callable[..., StreamCache]) -> None:
    view = CacheFileView(finished_cache(10))
    middle = view.batch_range(2, 7)
    assert (middle.start, middle.stop) == (2, 7)
    inner = pickle.loads(pickle.dumps(middle.batch_range(1, -1)))
    assert (inner.start, inner.stop, inner.num_batches) == (3, 6, 3)
    assert pa.table(inner).equals(pa.Table.from_batches(make_batches(10)[3:6]))
    assert inner.num_rows == 15
    assert view.batch_range(8).num_batches == 2
    assert view.batch_range(5, 99).stop == 10  # slice rules: clamped
    assert view.batch_range(7, 3).num_batches == 0
    assert pa.table(view.batch_range(7, 3)).num_rows == 0
    with pytest.raises(TypeError, match="start must be an int"):
        view.batch_range(1.5)  # type: ignore[arg-type]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(0, 12), parts=st.integers(1, 15))
def test_split_covers_every_batch_exactly_once(
    finished_cache: Callable[..., StreamCache], count: int, parts: int
) -> None:
    cache = finished_cache(count, rows=2) if count else None
    if cache is None:
        return  # an empty stream: covered by test_an_empty_finished_cache_pickles
    view = CacheFileView(cache)
    pieces = [pickle.loads(pickle.dumps(piece)) for piece in view.split(parts)]
    assert len(pieces) == parts
    sizes = [piece.num_batches for piece in pieces]
    assert max(sizes) - min(sizes) <= 1
    # Contiguous, in order, from the first batch to the last.
    assert pieces[0].start == 0 and pieces[-1].stop == count
    assert all(left.stop == right.start for left, right in itertools.pairwise(pieces))
    replayed = [batch for piece in pieces for batch in piece]
    assert pa.Table.from_batches(replayed, schema=view.schema).equals(table_of(count, rows=2))


def test_split_rejects_a_bad_part_count(finished_cache: Callable[..., StreamCache]) -> None:
    view = CacheFileView(finished_cache(2))
    with pytest.raises(ValueError, match="parts must be at least 1, got 0"):
        view.split(0)
    with pytest.raises(TypeError, match="parts must be an int"):
        view.split(2.0)  # type: ignore[arg-type]


def test_an_empty_finished_cache_pickles(tmp_path: Path) -> None:
    schema = make_batches(1)[0].schema
    with StreamCache(
        pa.RecordBatchReader.from_batches(schema, iter([])),
        disk_path=tmp_path,
        disk_capacity=1 << 20,
    ) as cache:
        cache.ingest_all()
        view = pickle.loads(pickle.dumps(cache))
        assert (view.num_batches, view.num_rows) == (0, 0)
        assert pa.table(view).equals(schema.empty_table())


# -- what cannot be pickled, and what to do instead -----------------------------


def test_a_memory_mode_cache_refuses_to_pickle_and_says_what_to_do() -> None:
    cache = StreamCache(table_of(2))
    cache.ingest_all()
    with pytest.raises(TypeError, match="memory-mode") as caught:
        pickle.dumps(cache)
    message = str(caught.value)
    assert "disk mode" in message and "ingest_all()" in message
    assert "batchcorder.flight.serve" in message


def test_an_unfinished_disk_cache_refuses_to_pickle(tmp_path: Path) -> None:
    with StreamCache(
        CountingSource(make_batches(4)), disk_path=tmp_path, disk_capacity=1 << 20
    ) as cache:
        next(cache.reader())
        with pytest.raises(ValueError, match=r"has read 1 batches .* Call cache\.ingest_all\(\)"):
            pickle.dumps(cache)
        cache.ingest_all()
        assert pickle.loads(pickle.dumps(cache)).num_batches == 4


def test_an_on_eviction_cache_refuses_to_pickle(tmp_path: Path) -> None:
    with StreamCache(
        CountingSource(make_batches(4)),
        memory_capacity=1,
        disk_path=tmp_path,
        disk_capacity=1 << 20,
        write_policy="on_eviction",
    ) as cache:
        cache.ingest_all()
        with pytest.raises(ValueError, match="write_policy='on_insertion'") as caught:
            pickle.dumps(cache)
        assert "batchcorder.flight.serve" in str(caught.value)


def test_a_dictionary_cache_refuses_to_pickle(tmp_path: Path) -> None:
    table = pa.table({"tag": pa.array(["a", "b", "a"]).dictionary_encode()})
    with StreamCache(table, disk_path=tmp_path, disk_capacity=1 << 20) as cache:
        cache.ingest_all()
        with pytest.raises(ValueError, match="dictionary-encoded fields"):
            pickle.dumps(cache)
        # What the message suggests: cache a cast to the value types.
        plain = pa.schema([("tag", pa.string())])
        with StreamCache(cache.cast(plain), disk_path=tmp_path, disk_capacity=1 << 20) as cast:
            cast.ingest_all()
            received = pickle.loads(pickle.dumps(cast))
            assert received.batch(0).column(0).to_pylist() == ["a", "b", "a"]


def test_a_closed_cache_refuses_to_pickle(finished_cache: Callable[..., StreamCache]) -> None:
    cache = finished_cache(2)
    view = CacheFileView(cache)
    path = str(cache.complete_file)
    cache.close()
    for refused in (lambda: pickle.dumps(cache), lambda: pickle.dumps(view)):
        with pytest.raises(CacheClosedError, match="the cache was closed") as caught:
            refused()
        assert caught.value.path is not None and str(caught.value.path) == path
        assert path in str(caught.value)
    with pytest.raises(CacheClosedError, match="closed"):
        CacheFileView(cache)


def test_the_view_constructor_wants_a_cache() -> None:
    with pytest.raises(TypeError, match=r"CacheFileView\.open\(path\)"):
        CacheFileView("file.arrow")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike, got int"):
        CacheFileView.open(3)  # type: ignore[arg-type]


def test_open_refuses_a_file_that_is_not_a_finished_ipc_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.arrow"
    empty.touch()
    with pytest.raises(ValueError, match="is empty"):
        CacheFileView.open(empty)
    stream = tmp_path / "stream.arrows"
    with pa.ipc.new_stream(stream, pa.schema([("x", pa.int64())])) as writer:
        writer.write_table(pa.table({"x": [1]}))
    with pytest.raises(ValueError, match="is not a finished Arrow IPC file"):
        CacheFileView.open(stream)


# -- the file's lifetime ---------------------------------------------------------


def test_every_view_raises_once_the_cache_is_closed(
    finished_cache: Callable[..., StreamCache],
) -> None:
    cache = finished_cache(5)
    path = str(cache.complete_file)
    own = CacheFileView(cache)
    opened = pickle.loads(pickle.dumps(cache))
    handed_out = opened.batch(1)  # maps the file
    unread = pickle.loads(pickle.dumps(cache))  # maps nothing
    stream = opened.reader()
    cache.close()
    assert not Path(path).exists()
    reads: list[Callable[[CacheFileView], object]] = [
        lambda view: view.batch(0),
        list,
        pa.table,
        lambda view: view.reader().read_all(),
        lambda view: view.num_rows,
        lambda view: view.nbytes,
        lambda view: view.batch_range(1, 3),
        lambda view: view.split(2),
    ]
    for view in (own, opened, unread):
        for read in reads:
            with pytest.raises(CacheClosedError, match="the cache was closed") as caught:
                read(view)
            assert str(caught.value.path) == path
    # A reader made before close() checks the file before each batch it hands out.
    with pytest.raises(CacheClosedError):
        stream.read_all()
    # What cannot be taken back: a batch handed out before close() is a view of
    # the map, which keeps the removed file's pages.
    assert handed_out.equals(make_batches(5)[1])


def test_unpickling_never_fails_and_the_first_read_names_the_file(
    finished_cache: Callable[..., StreamCache],
) -> None:
    cache = finished_cache(2)
    shared = pickle.dumps(cache)
    part = pickle.dumps(CacheFileView(cache).batch_range(1))
    path = cache.complete_file
    cache.close()
    received = pickle.loads(shared)  # nothing is opened yet
    assert (received.num_batches, received.path) == (2, path)
    assert "unreadable: CacheClosedError" in repr(received)
    with pytest.raises(
        CacheClosedError, match="the cache was closed or its file removed"
    ) as caught:
        received.batch(0)
    assert caught.value.path == path
    assert str(path) in str(caught.value)
    with pytest.raises(CacheClosedError):
        pickle.loads(part).batch(0)
    # A received view travels on as it came, to fail where it is read.
    assert pickle.loads(pickle.dumps(received)).path == path


def test_a_new_file_at_the_same_path_is_refused(
    finished_cache: Callable[..., StreamCache],
) -> None:
    cache = finished_cache(2)
    shared = pickle.dumps(cache)
    path = Path(cache.complete_file or "")
    cache.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.ipc.new_file(path, make_batches(1)[0].schema) as writer:
        writer.write_batch(make_batches(1, start=7)[0])
    # Another file: most often its inode is new; a freed inode number may be
    # reused, and then the file differs from the one shared by its size.
    with pytest.raises((CacheClosedError, CacheFileError), match="cache") as caught:
        pickle.loads(shared).batch(0)
    assert caught.value.path == path


def test_a_view_keeps_its_cache_alive(tmp_path: Path) -> None:
    cache = StreamCache(CountingSource(make_batches(3)), disk_path=tmp_path, disk_capacity=1 << 20)
    cache.ingest_all()
    view = CacheFileView(cache).batch_range(1)
    path = Path(cache.complete_file or "")
    del cache
    # The cache is referenced by the view: its file is still there for workers.
    assert pickle.loads(pickle.dumps(view)).num_batches == 2
    assert path.exists()
    del view
    assert not path.exists()


# -- worker processes ------------------------------------------------------------

# Run as a script, so that "spawn" workers can import its functions.
_POOL_SCRIPT = textwrap.dedent(
    """
    import json, multiprocessing, os, pickle, sys
    import pyarrow as pa
    from batchcorder import StreamCache
    from batchcorder.errors import CacheClosedError

    VIEW = None

    def init(view):
        global VIEW
        VIEW = view  # unpickled here (spawn) or inherited (fork)

    def read(index):
        batch = VIEW.batch(index)
        return index, os.getpid(), batch.column("id").to_pylist()

    def late(blob, queue):
        view = pickle.loads(blob)  # never fails: the file is opened at the first read
        try:
            view.batch(0)
            queue.put("read")
        except CacheClosedError as error:
            queue.put(f"{type(error).__name__}: {error}")

    def held(view, ready, go, queue):
        view.batch(0)  # maps the file before close()
        ready.set()
        go.wait()
        try:
            pa.table(view)
            queue.put("read")
        except CacheClosedError as error:
            queue.put(f"{type(error).__name__}: {error}")

    if __name__ == "__main__":
        method, directory = sys.argv[1], sys.argv[2]
        context = multiprocessing.get_context(method)
        table = pa.table({"id": range(1000), "x": [n / 4 for n in range(1000)]})
        cache = StreamCache(
            table.to_reader(max_chunksize=37), disk_path=directory, disk_capacity=1 << 30
        )
        cache.ingest_all()
        view = pickle.loads(pickle.dumps(cache))
        report = {"batches": view.num_batches, "epochs": []}
        with context.Pool(2, initializer=init, initargs=(view,)) as pool:
            for epoch in range(2):
                results = pool.map(read, range(view.num_batches), chunksize=1)
                report["epochs"].append(
                    {
                        "indices": sorted(index for index, _, _ in results),
                        "ids": [value for _, _, ids in sorted(results) for value in ids],
                        "pids": len({pid for _, pid, _ in results}),
                    }
                )
        ready, go, queue = context.Event(), context.Event(), context.Queue()
        keeper = context.Process(target=held, args=(view, ready, go, queue))
        keeper.start()
        ready.wait(60)
        blob = pickle.dumps(cache)
        cache.close()
        go.set()
        report["held"] = queue.get(timeout=60)
        keeper.join(60)
        opener = context.Process(target=late, args=(blob, queue))
        opener.start()
        report["late"] = queue.get(timeout=60)
        opener.join(60)
        report["path"] = str(view.path)
        print(json.dumps(report))
    """
)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_worker_processes_read_every_batch_exactly_once_per_epoch(
    method: str, tmp_path: Path
) -> None:
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    script = tmp_path / "pool.py"
    script.write_text(_POOL_SCRIPT)
    completed = subprocess.run(
        [sys.executable, str(script), method, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["batches"] == 28
    for epoch in report["epochs"]:
        assert epoch["indices"] == list(range(28))
        assert epoch["ids"] == list(range(1000))
    # One lifetime: after close(), a worker that had mapped the file and one
    # that receives it only then both get an error naming the file.
    for outcome in (report["held"], report["late"]):
        assert outcome.startswith("CacheClosedError: StreamCache is closed"), outcome
        assert report["path"] in outcome


def _training_page_block(marker: str) -> str:
    blocks = re.findall(
        r"```python\n(.*?)```", TRAINING_PAGE.read_text(encoding="utf-8"), re.DOTALL
    )
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"one block with {marker!r} expected on the training page"
    return found[0]


def test_training_page_torch_recipe(tmp_path: Path) -> None:
    """The training page's PyTorch recipe, run as a script (its workers import it), where torch is."""
    recipe = _training_page_block("import torch")
    pytest.importorskip("torch")
    script = tmp_path / "recipe.py"
    script.write_text(recipe)
    completed = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert completed.returncode == 0, completed.stderr
