"""Validation of ``StreamCache`` arguments into one immutable record."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["WRITE_POLICIES", "CacheOptions", "validate_options"]

WRITE_POLICIES = ("on_insertion", "on_eviction")


@dataclass(frozen=True)
class CacheOptions:
    """The validated configuration of one cache."""

    memory_capacity: int
    disk_path: Path | None
    disk_capacity: int | None
    write_policy: str
    max_readers: int | None

    @property
    def disk_mode(self) -> bool:
        return self.disk_path is not None


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of bytes, got {value}")
    return value


def validate_options(
    memory_capacity: object,
    disk_path: object,
    disk_capacity: object,
    write_policy: object,
    max_readers: object,
) -> CacheOptions:
    """Check every argument and name the first bad one.

    Examples
    --------
    >>> validate_options(None, None, None, "on_insertion", 2).max_readers
    2
    >>> validate_options(None, "/tmp", None, "on_insertion", None)
    Traceback (most recent call last):
    ...
    ValueError: disk_path and disk_capacity must be given together (got disk_path='/tmp', disk_capacity=None)
    """
    if memory_capacity is None:
        memory = psutil.virtual_memory().total
    else:
        memory = _positive_int("memory_capacity", memory_capacity)

    if (disk_path is None) != (disk_capacity is None):
        raise ValueError(
            "disk_path and disk_capacity must be given together "
            f"(got disk_path={disk_path!r}, disk_capacity={disk_capacity!r})"
        )
    directory: Path | None = None
    capacity: int | None = None
    if disk_path is not None:
        if not isinstance(disk_path, (str, os.PathLike)):
            raise TypeError(
                f"disk_path must be a str or os.PathLike, got {type(disk_path).__name__}"
            )
        directory = Path(os.fspath(disk_path))
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"disk_path must be a directory, but {str(directory)!r} is a file")
        capacity = _positive_int("disk_capacity", disk_capacity)

    if not isinstance(write_policy, str):
        raise TypeError(f"write_policy must be a str, got {type(write_policy).__name__}")
    if write_policy not in WRITE_POLICIES:
        raise ValueError(
            f"write_policy must be one of {', '.join(map(repr, WRITE_POLICIES))}, "
            f"got {write_policy!r}"
        )

    if max_readers is not None:
        if isinstance(max_readers, bool) or not isinstance(max_readers, int):
            raise TypeError(f"max_readers must be an int or None, got {type(max_readers).__name__}")
        if max_readers < 1:
            raise ValueError(f"max_readers must be at least 1, got {max_readers}")

    return CacheOptions(memory, directory, capacity, write_policy, max_readers)
