"""A shared cache file's failures reach the process that asked: worker pools, cut and rewritten files.

Each scenario runs in a subprocess of its own (``spawn`` workers import the
script, and a crash must not take pytest down), which prints what its caller
saw as JSON; the test asserts the subprocess's exit status and that report.
Waits are bounded hang guards, never assertions on time.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import CacheFileView, StreamCache
from batchcorder import errors as errors_module
from batchcorder.errors import CacheClosedError, CacheFileError

#: Hang guard for a subprocess: far beyond what a loaded two-core machine needs.
_SUBPROCESS_TIMEOUT = 600


def _run_script(source: str, *args: str, tmp_path: Path, stdin: str | None = None) -> Any:
    """Run ``source`` as a script; return the JSON of its last line, after checking its exit."""
    script = tmp_path / "scenario.py"
    script.write_text(textwrap.dedent(source))
    completed = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=_SUBPROCESS_TIMEOUT,
        check=False,
        input=stdin,
    )
    # A negative status is a signal: -7 is SIGBUS, the crash a cut mapping causes.
    assert completed.returncode == 0, (completed.returncode, completed.stderr[-4000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


# -- worker pools: close() with tasks queued -------------------------------------

_POOL_SCRIPT = """
    import json, multiprocessing, pickle, sys
    from concurrent.futures import ProcessPoolExecutor
    import pyarrow as pa
    import pyarrow.compute as pc
    from batchcorder import CacheFileView, StreamCache
    from batchcorder.errors import CacheClosedError

    def hold(gate):
        # Workers take no task until the parent has closed the cache.
        gate.wait(300)

    def total(part):
        return sum(pc.sum(batch.column("id")).as_py() or 0 for batch in part)

    def seen(wait):
        try:
            return {"result": wait()}
        except Exception as error:
            return {
                "type": type(error).__name__,
                "closed": isinstance(error, CacheClosedError),
                "message": str(error),
            }

    def scenario(kind, context, directory, sender):
        table = pa.table({"id": range(4000)})
        cache = StreamCache(
            table.to_reader(max_chunksize=100), disk_path=directory, disk_capacity=1 << 30
        )
        cache.ingest_all()
        if sender == "received":
            # Views as a process receives them: their pickles never refuse.
            parts = pickle.loads(pickle.dumps(cache)).split(8)
        else:
            parts = CacheFileView(cache).split(8)
        gate = context.Event()
        report = {"path": str(cache.complete_file)}
        if kind == "pool":
            with context.Pool(2, initializer=hold, initargs=(gate,)) as pool:
                pending = pool.map_async(total, parts)
                cache.close()
                gate.set()
                report.update(seen(lambda: pending.get(timeout=300)))
                report["after"] = pool.apply_async(sum, ([1, 2],)).get(timeout=300)
        else:
            with ProcessPoolExecutor(
                2, mp_context=context, initializer=hold, initargs=(gate,)
            ) as pool:
                futures = [pool.submit(total, part) for part in parts]
                cache.close()
                gate.set()
                report.update(seen(lambda: [future.result(timeout=300) for future in futures]))
                report["after"] = pool.submit(sum, [1, 2]).result(timeout=300)
        return report

    if __name__ == "__main__":
        kind, method, directory = sys.argv[1:4]
        context = multiprocessing.get_context(method)
        print(json.dumps({
            sender: scenario(kind, context, directory, sender) for sender in ("received", "own")
        }))
"""


@pytest.mark.parametrize("method", ["spawn", "fork"])
@pytest.mark.parametrize("kind", ["pool", "executor"])
def test_closing_the_cache_with_tasks_queued_fails_them_at_the_caller(
    kind: str, method: str, tmp_path: Path
) -> None:
    """``multiprocessing.Pool`` used to hang and ``ProcessPoolExecutor`` to break."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    report = _run_script(_POOL_SCRIPT, kind, method, str(tmp_path / "cache"), tmp_path=tmp_path)
    for sender, seen in report.items():
        assert seen.get("type") == "CacheClosedError", (sender, seen)
        assert seen["closed"], seen
        assert "the cache was closed or its file removed" in seen["message"]
        assert seen["path"] in seen["message"]
        # The pool is neither hung nor broken: it runs the next task.
        assert seen["after"] == 3


# -- the file cut or rewritten under a view in another process --------------------

_READER_SCRIPT = """
    import json, pickle, sys
    import pyarrow.compute as pc
    from batchcorder.errors import CacheFileError

    shared = open(sys.argv[1], "rb").read()
    opened = pickle.loads(shared)
    first = opened.batch(0)  # maps the file and decodes batch 0
    late = pickle.loads(shared)  # opens the file only at its first read, after the change
    print("ready", flush=True)
    sys.stdin.readline()  # the parent changes the file meanwhile

    def total(view):
        return sum(pc.sum(batch.column("id")).as_py() for batch in view)

    seen = {}
    for name, read in (
        ("decoded batch", lambda: pc.sum(opened.batch(0).column("id")).as_py()),
        ("every batch", lambda: total(opened)),
        ("late view", lambda: total(late)),
        ("reader", lambda: opened.reader().read_all().num_rows),
    ):
        try:
            seen[name] = read()
        except CacheFileError as error:
            seen[name] = f"CacheFileError: {error}"
    print(json.dumps(seen))
"""

_ROWS = 8 * 100_000


def _finished_cache(directory: Path) -> StreamCache:
    """Eight batches of 100,000 int64 ids (800 kB each): a cut removes whole pages of them."""
    table = pa.table({"id": pa.array(range(_ROWS), pa.int64())})
    cache = StreamCache(
        table.to_reader(max_chunksize=100_000), disk_path=directory, disk_capacity=1 << 30
    )
    cache.ingest_all()
    return cache


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _rewrite_one_value(path: Path) -> None:
    """Rewrite id 150,000 as 7 in place (same size), as another process might.

    Repeated until the file's modification time has moved past the one its
    cache recorded (a file system stamps times at a coarse granularity).
    """
    finished_ns = path.stat().st_mtime_ns
    offset = path.read_bytes().find(struct.pack("<q", 150_000))
    assert offset > 0
    fd = os.open(path, os.O_WRONLY)
    try:
        for _ in range(1000):
            os.pwrite(fd, struct.pack("<q", 7), offset)
            if os.fstat(fd).st_mtime_ns != finished_ns:
                return
            time.sleep(0.01)
    finally:
        os.close(fd)
    raise AssertionError("the file's modification time never changed")


@pytest.mark.parametrize(
    ("change", "problem"),
    [(_truncate, "another process truncated it"), (_rewrite_one_value, "was modified")],
    ids=["truncated", "rewritten"],
)
def test_a_file_changed_under_a_view_in_another_process_is_an_error_there(
    tmp_path: Path, change: Any, problem: str
) -> None:
    """Without the check, a cut file killed the reader (SIGBUS); a rewrite gave a wrong sum."""
    cache = _finished_cache(tmp_path / "cache")
    try:
        shared = tmp_path / "view.pickle"
        shared.write_bytes(pickle.dumps(cache))
        path = Path(cache.complete_file or "")
        script = tmp_path / "reader.py"
        script.write_text(textwrap.dedent(_READER_SCRIPT))
        reader = subprocess.Popen(
            [sys.executable, str(script), str(shared)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdin is not None
            assert reader.stdout.readline().strip() == "ready"
            change(path)
            stdout, stderr = reader.communicate("go\n", timeout=_SUBPROCESS_TIMEOUT)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
        assert reader.returncode == 0, (reader.returncode, stderr[-4000:])
        seen = json.loads(stdout.strip().splitlines()[-1])
        for name, outcome in seen.items():
            assert isinstance(outcome, str), (name, outcome)
            assert outcome.startswith("CacheFileError:") and problem in outcome, (name, outcome)
            assert str(path) in outcome
    finally:
        cache.close()


@pytest.mark.parametrize("change", [_truncate, _rewrite_one_value], ids=["truncated", "rewritten"])
def test_pickling_a_cache_whose_file_changed_is_refused(tmp_path: Path, change: Any) -> None:
    """The identity sent is the one recorded when the cache finished the file, not a fresh stat."""
    with _finished_cache(tmp_path / "cache") as cache:
        before = CacheFileView(cache)  # a map of the file, made before the change
        path = Path(cache.complete_file or "")
        change(path)
        for refused in (
            lambda: pickle.dumps(cache),
            lambda: CacheFileView(cache),
            lambda: before.batch(1),
        ):
            with pytest.raises(CacheFileError, match="cache file") as caught:
                refused()
            assert caught.value.path == path


def test_a_view_from_before_the_change_pickles_the_recorded_identity(tmp_path: Path) -> None:
    with _finished_cache(tmp_path / "cache") as cache:
        shared = pickle.dumps(CacheFileView(cache).batch_range(1, 3))
        _rewrite_one_value(Path(cache.complete_file or ""))
        with pytest.raises(CacheFileError, match="was modified by another process"):
            pickle.loads(shared).batch(0)


# -- every error reaches another process intact -----------------------------------

#: Each error class, made as the library makes it (built when a test runs).
_ERRORS = {
    "CacheClosedError": errors_module.CacheClosedError,
    "CacheClosedError-path": lambda: errors_module.CacheClosedError("/tmp/cache.arrow"),
    "ReaderLimitError": lambda: errors_module.ReaderLimitError(2),
    "BatchEvictedError-0": lambda: errors_module.BatchEvictedError(0),
    "BatchEvictedError": lambda: errors_module.BatchEvictedError(3),
    "ReaderConsumedError": errors_module.ReaderConsumedError,
    "SchemaMismatchError": lambda: errors_module.SchemaMismatchError(1, "field 'x' differs"),
    "IngestionInterruptedError": lambda: errors_module.IngestionInterruptedError(
        4, KeyboardInterrupt()
    ),
    "CacheFileError": lambda: errors_module.CacheFileError("/tmp/cache.arrow", "was modified"),
    "DiskCapacityError": lambda: errors_module.DiskCapacityError(10, 20, 25),
    "EnginePanicError": lambda: errors_module.EnginePanicError("Polars", BaseException("boom")),
}


def test_the_error_list_covers_every_error_class() -> None:
    made = {type(make()).__name__ for make in _ERRORS.values()}
    assert made == set(errors_module.__all__)


@pytest.mark.parametrize("name", sorted(_ERRORS))
def test_every_error_pickles_as_itself(name: str) -> None:
    """A worker pool whose result fails to unpickle hangs (multiprocessing) or breaks."""
    error = _ERRORS[name]()
    received = pickle.loads(pickle.dumps(error))
    assert type(received) is type(error)
    assert str(received) == str(error)
    assert received.args == error.args
    if not isinstance(
        error, (errors_module.IngestionInterruptedError, errors_module.EnginePanicError)
    ):  # holds an exception
        assert vars(received) == vars(error)
    if isinstance(error, OSError):
        assert (received.errno, received.strerror) == (error.errno, error.strerror)


def test_close_error_names_the_file_only_when_given_one() -> None:
    assert str(CacheClosedError()) == "StreamCache is closed"
    named = CacheClosedError(Path("/tmp/x.arrow"))
    assert "'/tmp/x.arrow'" in str(named) and named.path == Path("/tmp/x.arrow")
