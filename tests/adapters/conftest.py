"""Fixtures shared by the engine adapter tests: caches in both storage modes, typed test data,
counting and failing upstreams, and a page-residency probe of the disk-mode cache file."""

from __future__ import annotations

import ctypes
import datetime as dt
import decimal
import mmap
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import StreamCache

#: Rows per upstream batch of the typed test table.
BATCH_ROWS = 256

TZ = dt.timezone(dt.timedelta(hours=2))


def typed_table(rows: int = 2000) -> pa.Table:
    """A table with ints, floats, strings, tz-aware timestamps, decimals, lists, booleans and nulls."""
    start = dt.datetime(2024, 3, 30, 22, 0, tzinfo=TZ)
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "i": pa.array([None if n % 7 == 0 else n % 50 - 10 for n in range(rows)], pa.int32()),
            "f": pa.array([None if n % 11 == 0 else n / 8 for n in range(rows)], pa.float64()),
            "s": pa.array([None if n % 5 == 0 else f"s{n % 37:02d}" for n in range(rows)]),
            "ts": pa.array(
                [
                    None if n % 13 == 0 else start + dt.timedelta(minutes=17 * n)
                    for n in range(rows)
                ],
                pa.timestamp("us", tz="Europe/Paris"),
            ),
            "dec": pa.array(
                [None if n % 9 == 0 else decimal.Decimal(n * 7 - 5000) / 1000 for n in range(rows)],
                pa.decimal128(12, 3),
            ),
            "l": pa.array(
                [None if n % 6 == 0 else list(range(n % 4)) for n in range(rows)],
                pa.list_(pa.int64()),
            ),
            "b": pa.array([None if n % 17 == 0 else n % 3 == 0 for n in range(rows)]),
        }
    )


@pytest.fixture(scope="session")
def table() -> pa.Table:
    """The typed test table (2000 rows)."""
    return typed_table()


@pytest.fixture(params=["memory", "disk"])
def mode(request: pytest.FixtureRequest) -> str:
    """Storage mode of the caches ``make_cache`` builds."""
    return request.param


@pytest.fixture
def make_cache(mode: str, tmp_path: Path) -> Iterator[Callable[..., StreamCache]]:
    """Build caches over a table or reader in ``mode``; disk mode has a 1-byte hot layer."""
    caches: list[StreamCache] = []

    def make(source: Any, batch_rows: int = BATCH_ROWS, **options: Any) -> StreamCache:
        if isinstance(source, pa.Table):
            source = source.to_reader(max_chunksize=batch_rows)
        if mode == "disk":
            options = {
                "disk_path": tmp_path,
                "disk_capacity": 1 << 30,
                "memory_capacity": 1,
                **options,
            }
        cache = StreamCache(source, **options)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()


class CountingUpstream:
    """A one-shot Arrow stream counting the batches pulled from it."""

    def __init__(self, table: pa.Table, batch_rows: int = BATCH_ROWS) -> None:
        self.schema = table.schema
        self.batches = table.to_batches(max_chunksize=batch_rows)
        self.pulled = 0

    def _generate(self) -> Iterator[pa.RecordBatch]:
        for batch in self.batches:
            self.pulled += 1
            yield batch

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        reader = pa.RecordBatchReader.from_batches(self.schema, self._generate())
        return reader.__arrow_c_stream__(requested_schema)


@pytest.fixture
def counting_upstream(table: pa.Table) -> CountingUpstream:
    """A counting one-shot stream of the typed table."""
    return CountingUpstream(table)


UPSTREAM_MESSAGE = "upstream exploded at batch 2"


@pytest.fixture
def upstream_message() -> str:
    """The message of the exception ``failing`` streams raise."""
    return UPSTREAM_MESSAGE


def failing_upstream(table: pa.Table) -> pa.RecordBatchReader:
    """A stream of ``table`` that raises after two batches."""

    def generate() -> Iterator[pa.RecordBatch]:
        batches = table.to_batches(max_chunksize=BATCH_ROWS)
        yield from batches[:2]
        raise RuntimeError(UPSTREAM_MESSAGE)

    return pa.RecordBatchReader.from_batches(table.schema, generate())


@pytest.fixture
def failing(table: pa.Table) -> Callable[[], pa.RecordBatchReader]:
    """Make a stream of the typed table that fails after two batches."""
    return lambda: failing_upstream(table)


# -- page-residency probe ------------------------------------------------------

_PAGE = mmap.PAGESIZE
_MADV_RANDOM = 1
_MADV_DONTNEED = 4


def wide_table(rows: int = 100_000) -> pa.Table:
    """A wide table: a sequential key, two 40-byte string columns and three float columns."""
    return pa.table(
        {
            "key": pa.array(range(rows), pa.int64()),
            "s1": pa.array([f"first-{n:012d}-{'x' * 21}" for n in range(rows)]),
            "s2": pa.array([f"other-{n:012d}-{'y' * 21}" for n in range(rows)]),
            "f1": pa.array([n * 0.5 for n in range(rows)], pa.float64()),
            "f2": pa.array([n * 0.25 for n in range(rows)], pa.float64()),
            "f3": pa.array([n * 0.125 for n in range(rows)], pa.float64()),
        }
    )


class PageProbe:
    """Which pages of each column of a disk-mode cache file a query reads.

    Reading a page of a memory-mapped file faults it into the page cache; the
    probe evicts the file from the page cache, switches off readahead on the
    cache's own mapping (so a fault loads exactly one page), and after a query
    asks ``mincore`` which pages came back. Only pages lying wholly inside one
    column's buffers count, so metadata and shared boundary pages never blur
    the answer.
    """

    def __init__(self, cache: StreamCache) -> None:
        if not sys.platform.startswith("linux"):
            pytest.skip("the page probe uses Linux's mincore and madvise")
        cache.ingest_all()
        path = cache.disk_file
        assert path is not None, "the page probe needs a disk-mode cache"
        self.path = Path(path)
        self._cache = cache
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        self._libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        # column -> one list of interior page numbers per batch
        self.pages = self._column_pages()

    def _column_pages(self) -> dict[str, list[list[int]]]:
        # A private map of the file, parsed as the IPC file it is; only the
        # metadata pages are read. The map is unmapped when the last buffer
        # of it is released, at the end of this method.
        with self.path.open("rb") as file:
            whole = pa.py_buffer(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
        layout: dict[str, list[list[int]]] = {}
        with pa.ipc.open_file(whole) as reader:
            for index in range(reader.num_record_batches):
                batch = reader.get_batch(index)
                for name, column in zip(batch.schema.names, batch.columns, strict=True):
                    pages: list[int] = []
                    for buffer in column.buffers():
                        if buffer is None or buffer.size == 0:
                            continue
                        start = buffer.address - whole.address
                        end = start + buffer.size
                        # Pages wholly inside [start, end).
                        pages.extend(range(-(-start // _PAGE), end // _PAGE))
                    layout.setdefault(name, []).append(pages)
        return layout

    def reset(self) -> None:
        """Switch off readahead on the cache's mapping and evict the file from the page cache.

        The cache keeps one map of its file for every reader, which is the one
        the engines read through; it is the one advised here.
        """
        with self._cache.reader() as reader:
            batches = list(reader)
        for batch in batches:
            for column in batch.columns:
                for buffer in column.buffers():
                    if buffer is None or buffer.size == 0:
                        continue
                    start = buffer.address // _PAGE * _PAGE
                    length = buffer.address + buffer.size - start
                    self._libc.madvise(
                        ctypes.c_void_p(start), ctypes.c_size_t(length), _MADV_RANDOM
                    )
                    # Unmap the pages decoding faulted in (with their fault-around
                    # neighbours): the page cache keeps a page that is mapped.
                    self._libc.madvise(
                        ctypes.c_void_p(start), ctypes.c_size_t(length), _MADV_DONTNEED
                    )
        del batches
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        baseline = self.touched()
        if max(max(per_batch) for per_batch in baseline.values()) > 0.05:
            pytest.skip(f"cannot evict {self.path} from the page cache on this filesystem")

    def _resident(self) -> bytes:
        size = self.path.stat().st_size
        with self.path.open("rb") as file:
            view = pa.py_buffer(mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ))
        vector = (ctypes.c_ubyte * (-(-size // _PAGE)))()
        if self._libc.mincore(ctypes.c_void_p(view.address), ctypes.c_size_t(size), vector):
            raise OSError(ctypes.get_errno(), "mincore failed")
        return bytes(flag & 1 for flag in vector)

    def touched(self) -> dict[str, list[float]]:
        """Per column, per batch: the fraction of the column's pages that are in the page cache."""
        resident = self._resident()
        return {
            name: [
                sum(resident[page] for page in pages) / len(pages) if pages else 0.0
                for pages in per_batch
            ]
            for name, per_batch in self.pages.items()
        }


@pytest.fixture
def fresh_disk_cache(table: pa.Table, tmp_path: Path) -> Iterator[StreamCache]:
    """A disk-mode cache (1-byte hot layer) over batches the upstream allocates
    and drops: anything that still holds them after ingestion made a copy."""

    def fresh_batches() -> Iterator[pa.RecordBatch]:
        for batch in table.to_batches(max_chunksize=256):
            yield pa.RecordBatch.from_pylist(batch.to_pylist(), schema=table.schema)

    cache = StreamCache(
        pa.RecordBatchReader.from_batches(table.schema, fresh_batches()),
        disk_path=tmp_path / "fresh",
        disk_capacity=1 << 30,
        memory_capacity=1,
    )
    yield cache
    cache.close()


@pytest.fixture
def wide_disk_cache(tmp_path: Path) -> Iterator[StreamCache]:
    """A fully ingested disk-mode cache of ``wide_table()`` in 10 batches, with a 1-byte hot layer."""
    cache = StreamCache(
        wide_table().to_reader(max_chunksize=10_000),
        disk_path=tmp_path,
        disk_capacity=1 << 30,
        memory_capacity=1,
    )
    cache.ingest_all()
    yield cache
    cache.close()


@pytest.fixture
def page_probe(wide_disk_cache: StreamCache) -> PageProbe:
    """A probe of ``wide_disk_cache``'s file, reset and ready for one query."""
    probe = PageProbe(wide_disk_cache)
    probe.reset()
    return probe
