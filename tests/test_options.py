"""Bad arguments are refused with a message naming the argument."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from batchcorder import StreamCache

TABLE = pa.table({"x": [1, 2, 3]})


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"memory_capacity": -5}, ValueError, "memory_capacity"),
        ({"memory_capacity": 1.5}, TypeError, "memory_capacity"),
        ({"memory_capacity": "1GB"}, TypeError, "memory_capacity"),
        ({"memory_capacity": True}, TypeError, "memory_capacity"),
        ({"disk_capacity": 100}, ValueError, "disk_path and disk_capacity"),
        ({"disk_path": "DIR"}, ValueError, "disk_path and disk_capacity"),
        ({"disk_path": "DIR", "disk_capacity": 0}, ValueError, "disk_capacity"),
        ({"disk_path": "DIR", "disk_capacity": -1}, ValueError, "disk_capacity"),
        ({"disk_path": "DIR", "disk_capacity": 2.0}, TypeError, "disk_capacity"),
        ({"disk_path": 3, "disk_capacity": 100}, TypeError, "disk_path"),
        ({"write_policy": "sometimes"}, ValueError, "write_policy"),
        ({"write_policy": None}, TypeError, "write_policy"),
        ({"max_readers": 0}, ValueError, "max_readers"),
        ({"max_readers": -2}, ValueError, "max_readers"),
        ({"max_readers": 1.0}, TypeError, "max_readers"),
    ],
)
def test_bad_arguments_name_the_argument(
    kwargs: dict[str, Any], error: type[Exception], names: str, tmp_path: Path
) -> None:
    if kwargs.get("disk_path") == "DIR":
        kwargs = {**kwargs, "disk_path": tmp_path}
    with pytest.raises(error, match=names):
        StreamCache(TABLE, **kwargs)


def test_disk_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    with pytest.raises(ValueError, match="disk_path must be a directory"):
        StreamCache(TABLE, disk_path=a_file, disk_capacity=1 << 20)


def test_positional_arguments_keep_the_reference_order(tmp_path: Path) -> None:
    cache = StreamCache(TABLE, 1 << 20, tmp_path, 1 << 20, "on_eviction", 3)
    assert cache.max_readers == 3
    assert cache.disk_file is not None and cache.disk_file.parent == tmp_path
    cache.close()


def test_missing_disk_path_is_created(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    with StreamCache(TABLE, disk_path=str(nested), disk_capacity=1 << 20) as cache:
        assert pa.table(cache).equals(TABLE)
        assert nested.is_dir()
        assert stat.S_IMODE(nested.stat().st_mode) == 0o700
    # What the cache created, it removes; what was there before, it leaves.
    assert not (tmp_path / "a").exists()
    assert tmp_path.is_dir()


@pytest.mark.parametrize(
    "number",
    [np.int64(1 << 20), np.int32(4096), np.uint32(512), np.intp(8)],
    ids=lambda value: type(value).__name__,
)
def test_numpy_integers_are_accepted_for_sizes_and_max_readers(number: Any, tmp_path: Path) -> None:
    # The 0.1.3 reference accepts any integer type; so do we (but not bool).
    cache = StreamCache(
        TABLE,
        memory_capacity=number,
        disk_path=tmp_path,
        disk_capacity=number * 1024,
        max_readers=number,
    )
    assert type(cache.max_readers) is int and cache.max_readers == int(number)
    assert pa.table(cache).equals(TABLE)
    cache.close()


@pytest.mark.parametrize("value", [np.bool_(True), True])
def test_bools_are_not_sizes_nor_reader_counts(value: Any) -> None:
    with pytest.raises(TypeError, match="max_readers"):
        StreamCache(TABLE, max_readers=value)
    with pytest.raises(TypeError, match="memory_capacity"):
        StreamCache(TABLE, memory_capacity=value)


@pytest.mark.parametrize("value", ["yes", None, 1.0, [1], 1, 0, "", np.int64(1)])
def test_from_start_must_be_a_bool(value: Any) -> None:
    cache = StreamCache(TABLE)
    with pytest.raises(TypeError, match="from_start must be a bool"):
        cache.reader(from_start=value)
    assert cache.stats.readers_created == 0


@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False)])
def test_from_start_takes_python_and_numpy_bools(value: Any) -> None:
    cache = StreamCache(TABLE.to_reader(max_chunksize=1))
    first = cache.reader()
    next(first)
    expected = 3 if value else 2
    assert sum(batch.num_rows for batch in cache.reader(from_start=value)) == expected


def test_a_write_policy_that_cannot_take_effect_is_accepted_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="no effect in memory mode"):
        cache = StreamCache(TABLE, write_policy="on_eviction")
    assert pa.table(cache).equals(TABLE)  # accepted, as by the reference
