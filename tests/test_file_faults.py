"""Faults at the cache file: every batch served replays identically, or a read raises clearly.

Short writes, a full disk, I/O errors, a file truncated or changed by another
process, and a fork. Cases that could kill the process (SIGBUS on a cut
mapping) or need per-process limits (RLIMIT_FSIZE) run in a subprocess whose
return code is checked: the process never dies by a signal.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import StreamCache
from batchcorder.errors import CacheFileError
from tests.conftest import make_batches

POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="POSIX file semantics")


def run_script(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter; fail if a signal killed it."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode >= 0, f"killed by signal {-completed.returncode}: {completed}"
    assert completed.returncode == 0, completed.stderr
    return completed


def disk_cache(source: Any, directory: Path, **kwargs: Any) -> StreamCache:
    return StreamCache(source, disk_path=directory, disk_capacity=1 << 30, **kwargs)


# -- writes that do not land whole --------------------------------------------


class FlakyWrites:
    """Replaces ``os.pwrite``: the ``fail_at``-th call writes ``partial`` bytes, the next raises."""

    def __init__(self, fail_at: int, partial: int | None, error: int) -> None:
        self.calls = 0
        self.fail_at = fail_at
        self.partial = partial
        self.error = error
        self.real = os.pwrite
        self.failed = False

    def __call__(self, fd: int, data: Any, offset: int) -> int:
        self.calls += 1
        if self.calls == self.fail_at and self.partial is not None:
            return self.real(fd, memoryview(data)[: self.partial], offset)
        if self.calls >= self.fail_at:
            self.failed = True
            raise OSError(self.error, os.strerror(self.error))
        return self.real(fd, data, offset)


@pytest.mark.parametrize("policy", ["on_insertion", "on_eviction"])
@pytest.mark.parametrize(
    ("partial", "error"),
    [(100, errno.ENOSPC), (None, errno.EIO), (1, errno.EFBIG), (None, errno.ENOSPC)],
)
def test_a_failed_write_never_indexes_missing_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, partial: int | None, error: int
) -> None:
    batches = make_batches(6, rows=2000)
    source = pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches))
    cache = disk_cache(source, tmp_path, memory_capacity=1, write_policy=policy)
    served = [next(iter(cache)) for _ in range(1)]
    reader = cache.reader()
    served = [next(reader), next(reader)]
    flaky = FlakyWrites(fail_at=3, partial=partial, error=error)
    monkeypatch.setattr(os, "pwrite", flaky)
    with pytest.raises(OSError) as caught:
        for batch in reader:
            served.append(batch)
    monkeypatch.setattr(os, "pwrite", flaky.real)
    assert flaky.failed and caught.value.errno == error
    # Every batch a reader got replays identically, from RAM or the file;
    # the failed batch raises the same error for every later reader.
    for _ in range(2):
        replay = cache.reader()
        for expected in served:
            assert next(replay).equals(expected)
        with pytest.raises(OSError) as again:
            next(replay)
        assert again.value.errno == error
    assert cache.ingested_count == len(served)
    cache.close()


@POSIX_ONLY
@pytest.mark.parametrize("policy", ["on_insertion", "on_eviction"])
def test_a_file_size_limit_cuts_a_write_short_without_losing_a_served_batch(
    tmp_path: Path, policy: str
) -> None:
    # A filling disk: RLIMIT_FSIZE makes the kernel land part of a write and
    # refuse the rest (Python ignores SIGXFSZ, so the write fails with EFBIG).
    script = """
        import resource, sys
        import pyarrow as pa
        from batchcorder import StreamCache

        batches = [pa.record_batch({"x": pa.array(range(i * 20000, (i + 1) * 20000))}) for i in range(8)]
        cache = StreamCache(
            pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches)),
            memory_capacity=1, disk_path=sys.argv[1], disk_capacity=1 << 30,
            write_policy=sys.argv[2],
        )
        resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, resource.RLIM_INFINITY))
        served = []
        try:
            for batch in cache:
                served.append(batch)
        except OSError as error:
            print("error", error.errno)
        assert 0 < len(served) < 8, len(served)
        for _ in range(2):
            replay = cache.reader()
            for index, expected in enumerate(served):
                got = next(replay)
                assert got.equals(expected), index
                assert got.column(0)[0].as_py() == index * 20000
            try:
                next(replay)
                raise SystemExit("served a batch that was never written")
            except OSError as error:
                assert "Expected to be able to read" not in str(error), error
        print("served", len(served))
        cache.close()
    """
    completed = run_script(script, str(tmp_path), policy)
    assert "error 27" in completed.stdout  # EFBIG
    assert "served" in completed.stdout


# -- another process cuts or changes the file ----------------------------------


@POSIX_ONLY
@pytest.mark.parametrize("when", ["finished", "live"])
def test_a_truncated_file_raises_a_clear_error_not_sigbus(tmp_path: Path, when: str) -> None:
    script = """
        import os, sys
        import pyarrow as pa
        from batchcorder import StreamCache
        from batchcorder.errors import CacheFileError

        batches = [pa.record_batch({"x": pa.array(range(i * 50000, (i + 1) * 50000))}) for i in range(6)]
        source = pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches))
        cache = StreamCache(source, memory_capacity=1, disk_path=sys.argv[1], disk_capacity=1 << 30)
        if sys.argv[2] == "finished":
            cache.ingest_all()
            assert pa.table(cache).num_rows == 300000  # maps and decodes every batch
        else:
            reader = cache.reader()
            for _ in range(4):
                next(reader)
        path = str(cache.disk_file)
        os.truncate(path, os.path.getsize(path) // 3)  # as another process would
        for attempt in range(2):
            try:
                total = sum(batch.column(0)[0].as_py() for batch in cache)
                raise SystemExit(f"read a truncated file: {total}")
            except CacheFileError as error:
                assert path in str(error) and "truncated" in str(error), error
        try:
            pa.table(cache)
            raise SystemExit("exported a truncated file")
        except (OSError, pa.ArrowException) as error:  # through the C stream: OSError
            assert "truncated" in str(error), error
        cache.close()
        print("refused")
    """
    completed = run_script(script, str(tmp_path), when)
    assert "refused" in completed.stdout


@POSIX_ONLY
def test_a_finished_file_changed_by_another_process_is_refused(tmp_path: Path) -> None:
    batches = make_batches(4, rows=1000)
    cache = disk_cache(iter_reader(batches), tmp_path, memory_capacity=1)
    cache.ingest_all()
    assert pa.table(cache).to_batches() == batches or pa.table(cache).num_rows == 4000
    path = cache.disk_file
    assert path is not None
    size = path.stat().st_size
    with path.open("r+b") as other:  # same size, other bytes
        other.seek(size // 2)
        other.write(b"\0" * 64)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    reader = cache.reader()  # as in the reference: refused at the first batch from the file
    with pytest.raises(CacheFileError, match="modified by another process"):
        next(reader)
    with pytest.raises(OSError, match="modified by another process"):
        pa.table(cache)  # through the C stream: an OSError with the message
    cache.close()


@POSIX_ONLY
def test_batches_in_the_hot_layer_are_served_after_the_file_changed(tmp_path: Path) -> None:
    # Only what must come from the file is refused; RAM holds the rest intact.
    batches = make_batches(4, rows=1000)
    hot_bytes = sum(batch.nbytes for batch in batches[2:])
    cache = disk_cache(iter_reader(batches), tmp_path, memory_capacity=hot_bytes * 5 // 4)
    cache.ingest_all()
    path = cache.disk_file
    assert path is not None
    reading = cache.reader()
    assert [next(reading).equals(batch) for batch in batches[:2]] == [True, True]
    with path.open("r+b") as other:
        other.seek(8)
        other.write(b"\xff" * 64)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(CacheFileError, match="modified by another process"):
        next(cache.reader())
    # The first reader's next batches are in RAM: served.
    assert [
        batch.equals(expected) for batch, expected in zip(reading, batches[2:], strict=True)
    ] == [True, True]
    cache.close()


def iter_reader(batches: list[pa.RecordBatch]) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches))


# -- fork ------------------------------------------------------------------------


@POSIX_ONLY
@pytest.mark.parametrize("policy", ["on_insertion", "on_eviction"])
def test_a_forked_child_never_writes_into_the_parents_file(tmp_path: Path, policy: str) -> None:
    script = """
        import os, sys
        import pyarrow as pa
        from batchcorder import StreamCache
        from batchcorder.errors import CacheFileError

        def stream(tag):
            for i in range(8):
                yield pa.record_batch({"x": pa.array([i] * 1000), "tag": pa.array([tag] * 1000)})

        schema = pa.schema([("x", pa.int64()), ("tag", pa.string())])
        cache = StreamCache(
            pa.RecordBatchReader.from_batches(schema, stream("parent")),
            memory_capacity=1, disk_path=sys.argv[1], disk_capacity=1 << 30,
            write_policy=sys.argv[2],
        )
        reader = cache.reader()
        for _ in range(3):
            next(reader)
        path = cache.disk_file
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                seen = [batch.column(0)[0].as_py() for batch in cache]
                code = 3  # it ingested into the parent's file
            except CacheFileError as error:
                code = 0 if "belongs to process" in str(error) else 4
            except Exception as error:
                print("child:", type(error).__name__, error, file=sys.stderr)
                code = 5
            cache.close()  # must not remove the parent's file
            sys.exit(code)  # runs the finalizers too
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, os.waitstatus_to_exitcode(status)
        assert path.exists(), "the child removed the parent's file"
        for _ in range(2):
            table = pa.table(cache)
            assert table.column("x").to_pylist() == [i for i in range(8) for _ in range(1000)]
            assert set(table.column("tag").to_pylist()) == {"parent"}
        cache.close()
        assert not path.exists()
        print("ok")
    """
    assert "ok" in run_script(script, str(tmp_path), policy).stdout


@POSIX_ONLY
def test_a_forked_child_reads_what_the_parent_cached(tmp_path: Path) -> None:
    script = """
        import os, sys
        import pyarrow as pa
        from batchcorder import StreamCache

        table = pa.table({"x": range(10_000)})
        cache = StreamCache(table.to_reader(max_chunksize=1000), memory_capacity=1,
                            disk_path=sys.argv[1], disk_capacity=1 << 30)
        cache.ingest_all()
        pid = os.fork()
        if pid == 0:
            ok = all(pa.table(cache).equals(table) for _ in range(2))
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert pa.table(cache).equals(table)
        cache.close()
        print("ok")
    """
    assert "ok" in run_script(script, str(tmp_path)).stdout
