"""Shared sources and caches, parametrised over every storage mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcorder import StreamCache

MODES = ("memory", "disk", "disk-1-byte-hot")


class UpstreamFailure(RuntimeError):
    """The error a failing test upstream raises."""


class CountingSource:
    """A one-shot stream that counts the batches pulled from it.

    It can fail with :class:`UpstreamFailure` when batch ``fail_at`` is pulled.
    """

    def __init__(
        self,
        batches: list[pa.RecordBatch],
        schema: pa.Schema | None = None,
        fail_at: int | None = None,
    ) -> None:
        self.batches = batches
        self.schema = schema if schema is not None else batches[0].schema
        self.fail_at = fail_at
        self.pulled = 0
        self.exported = 0

    def _generate(self) -> Iterator[pa.RecordBatch]:
        for index, batch in enumerate(self.batches):
            if index == self.fail_at:
                raise UpstreamFailure(f"upstream broke at batch {index}")
            self.pulled += 1
            yield batch

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        self.exported += 1
        if self.exported > 1:
            raise RuntimeError("a one-shot source was exported twice")
        reader = pa.RecordBatchReader.from_batches(self.schema, self._generate())
        return reader.__arrow_c_stream__(requested_schema)


def make_batches(count: int, rows: int = 5, start: int = 0) -> list[pa.RecordBatch]:
    """``count`` batches of ``rows`` rows, each with buffers of its own."""
    batches = []
    for index in range(start, start + count):
        base = index * rows
        batches.append(
            pa.record_batch(
                {
                    "id": pa.array(range(base, base + rows), pa.int64()),
                    "value": pa.array(
                        [float(v) / 3 for v in range(base, base + rows)], pa.float64()
                    ),
                    "label": pa.array([f"row-{v}" for v in range(base, base + rows)], pa.string()),
                }
            )
        )
    return batches


def mode_kwargs(mode: str, directory: Path) -> dict[str, Any]:
    """StreamCache keyword arguments for a storage mode."""
    if mode == "memory":
        return {}
    kwargs: dict[str, Any] = {"disk_path": directory, "disk_capacity": 1 << 30}
    if mode == "disk-1-byte-hot":
        kwargs["memory_capacity"] = 1
    return kwargs


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_cache(mode: str, tmp_path: Path) -> Iterator[Callable[..., StreamCache]]:
    """Build caches in the current mode; all are closed after the test."""
    caches: list[StreamCache] = []

    def build(source: Any, **kwargs: Any) -> StreamCache:
        cache = StreamCache(source, **{**mode_kwargs(mode, tmp_path / "cache"), **kwargs})
        caches.append(cache)
        return cache

    yield build
    for cache in caches:
        cache.close()
