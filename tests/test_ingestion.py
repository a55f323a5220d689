"""The parts of the core on their own: ingestion, the reader registry, the replay contract.

Internal parts under test: ``batchcorder._reader_registry``, ``batchcorder._ingestion``, ``batchcorder._replay``, ``batchcorder._storage``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from batchcorder._ingestion import Ingestion
from batchcorder._reader_registry import ReaderRegistry
from batchcorder._replay import Replay
from batchcorder._storage import MemoryStore
from batchcorder.errors import (
    BatchEvictedError,
    CacheClosedError,
    IngestionInterruptedError,
    ReaderLimitError,
)
from tests.conftest import make_batches

#: How long a waiter may take to wake once a pull ends; a lost wake-up hangs forever.
WATCHDOG = 10.0


class GatedStream:
    """An upstream whose next batch is produced only when the test opens the gate."""

    def __init__(self, batches: list[pa.RecordBatch], ending: BaseException | None = None) -> None:
        self.batches = batches
        self.ending = ending
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.pulled = 0

    def _generate(self) -> Iterator[pa.RecordBatch]:
        for batch in self.batches:
            self.entered.set()
            assert self.gate.wait(WATCHDOG)
            self.gate.clear()
            self.pulled += 1
            yield batch
        if self.ending is not None:
            self.entered.set()
            assert self.gate.wait(WATCHDOG)
            raise self.ending

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.batches[0].schema, self._generate())


def wait_in_thread(ingestion: Ingestion, position: int) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append(ingestion.wait_for(position))
        except BaseException as error:  # the outcome is what the test checks
            outcome.append(error)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("ending", ["batch", "end", "failure", "interrupt", "close"])
def test_every_waiter_wakes_when_a_pull_ends_however_it_ends(ending: str) -> None:
    # Without a wake-up at the end of the pull the waiters would sleep
    # forever (there is no polling): the watchdog join catches that.
    batches = make_batches(1)
    endings: dict[str, BaseException | None] = {
        "failure": ValueError("upstream broke"),
        "interrupt": KeyboardInterrupt(),
    }
    stream = GatedStream(batches if ending == "batch" else [], endings.get(ending))
    if ending in ("end", "failure", "interrupt", "close"):
        stream.batches = []
    upstream = (
        stream.reader()
        if stream.batches
        else pa.RecordBatchReader.from_batches(
            batches[0].schema, _ending_only(stream, endings.get(ending))
        )
    )
    ingestion = Ingestion(upstream, MemoryStore())
    puller, pulled = wait_in_thread(ingestion, 0)
    assert stream.entered.wait(WATCHDOG)
    waiters = [wait_in_thread(ingestion, 0) for _ in range(3)]
    if ending == "close":
        ingestion.close()
    stream.gate.set()
    for thread, _ in [(puller, pulled), *waiters]:
        thread.join(WATCHDOG)
        assert not thread.is_alive(), "a waiter was never woken"
    outcomes = [outcome[0] for _, outcome in waiters]
    if ending == "batch":
        assert outcomes == [True] * 3
    elif ending == "end":
        assert outcomes == [False] * 3
    elif ending == "failure":
        assert all(isinstance(o, ValueError) and "upstream broke" in str(o) for o in outcomes)
    elif ending == "interrupt":
        assert all(isinstance(o, IngestionInterruptedError) for o in outcomes)
    else:
        assert all(isinstance(o, CacheClosedError) for o in outcomes)


def _ending_only(stream: GatedStream, ending: BaseException | None) -> Iterator[pa.RecordBatch]:
    stream.entered.set()
    assert stream.gate.wait(WATCHDOG)
    if ending is not None:
        raise ending
    yield from ()


def test_the_upstream_is_pulled_once_by_one_thread_at_a_time() -> None:
    batches = make_batches(50)
    inside = threading.Semaphore(1)
    overlaps = []

    def generate() -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if not inside.acquire(blocking=False):
                overlaps.append(batch)
            yield batch
            inside.release()

    ingestion = Ingestion(
        pa.RecordBatchReader.from_batches(batches[0].schema, generate()), MemoryStore()
    )
    threads = [threading.Thread(target=lambda: ingestion.wait_for(49)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WATCHDOG)
    assert not overlaps and ingestion.frontier == 50
    assert ingestion.counts() == (50, 250, sum(batch.nbytes for batch in batches))


def test_the_registry_caps_readers_and_evicts_behind_the_slowest() -> None:
    dropped: list[int] = []
    registry = ReaderRegistry(3, dropped.append)
    readers = [registry.admit(from_start=True, frontier=0) for _ in range(2)]
    registry.moved(readers[0].token, 5)
    registry.moved(readers[1].token, 4)
    assert dropped == []  # the third reader may still start at batch 0
    late = registry.admit(from_start=False, frontier=6)
    assert late.position == 6
    assert dropped == [0, 1, 2, 3] and registry.evicted_before == 4
    with pytest.raises(ReaderLimitError, match=r"Maximum number of readers \(3\)"):
        registry.admit(from_start=False, frontier=6)
    registry.finished(readers[1].token)
    assert dropped == [0, 1, 2, 3, 4] and registry.evicted_before == 5
    registry.finished(readers[1].token)  # twice is harmless
    assert registry.evicted_before == 5


def test_without_a_cap_nothing_is_tracked_or_evicted() -> None:
    registry = ReaderRegistry(None, lambda position: pytest.fail(f"dropped {position}"))
    admissions = [registry.admit(from_start=True, frontier=10) for _ in range(100)]
    assert not any(admission.tracked for admission in admissions)
    assert registry.created == 100 and registry.evicted_before == 0


def test_replay_reports_evicted_and_closed_batches() -> None:
    store = MemoryStore()
    batches = make_batches(3)
    ingestion = Ingestion(
        pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches)), store
    )
    registry = ReaderRegistry(1, store.drop, ingestion.bounds)
    replay = Replay(ingestion, store, registry)
    admission = registry.admit(from_start=True, frontier=0)
    assert replay.fetch(0).equals(batches[0]) and replay.cached(0).equals(batches[0])
    assert replay.fetch(1).equals(batches[1])
    replay.moved(admission.token, 2)
    assert replay.cached(0) is None
    with pytest.raises(BatchEvictedError, match="batch 0 was evicted"):
        replay.fetch(0)
    assert replay.all_from(0) is None  # with a cap, never exported whole
    ingestion.close()
    assert replay.cached(2) is None
    with pytest.raises(CacheClosedError):
        replay.fetch(2)
