"""Validation of ``StreamCache`` arguments into one immutable record."""

from __future__ import annotations

import operator
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["WRITE_POLICIES", "CacheOptions", "validate_flag", "validate_options"]

WRITE_POLICIES = ("on_insertion", "on_eviction")


@dataclass(frozen=True)
class CacheOptions:
    """The validated configuration of one cache."""

    memory_capacity: int
    disk_path: Path | None
    disk_capacity: int | None
    write_policy: str
    max_readers: int | None


def _integer(name: str, value: object, what: str = "an int") -> int:
    """``value`` as an int: any integer type (numpy's too), but not a bool."""
    if not _is_bool(value):
        try:
            # Any value: operator.index raises the TypeError caught below.
            return operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise TypeError(f"{name} must be {what}, got {type(value).__name__}: {value!r}")


def _is_bool(value: object) -> bool:
    """Whether ``value`` is a Python or a numpy bool (without importing numpy)."""
    kind = type(value)
    return isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    )


def _positive_int(name: str, value: object) -> int:
    number = _integer(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be a positive number of bytes, got {number}")
    return number


def _byte_count(name: str, value: object) -> int:
    number = _integer(name, value)
    if number < 0:
        raise ValueError(f"{name} must be a number of bytes >= 0, got {number}")
    return number


def validate_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool (Python's or numpy's), else a TypeError naming ``name``.

    Examples
    --------
    >>> validate_flag("from_start", False)
    False
    >>> validate_flag("from_start", "yes")
    Traceback (most recent call last):
    ...
    TypeError: from_start must be a bool, got str: 'yes'
    """
    if not _is_bool(value):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}: {value!r}")
    return bool(value)


def _warn_no_effect() -> None:
    """Accepted, as by the reference, but ``on_eviction`` cannot take effect without a file."""
    warnings.warn(
        "write_policy='on_eviction' has no effect in memory mode (no disk_path): "
        "every batch stays in RAM; give disk_path and disk_capacity to spill",
        UserWarning,
        stacklevel=5,
    )


def _write_policy(write_policy: object, directory: Path | None) -> str:
    """``write_policy`` checked; a warning where it cannot take effect (no file)."""
    if not isinstance(write_policy, str):
        raise TypeError(f"write_policy must be a str, got {type(write_policy).__name__}")
    if write_policy not in WRITE_POLICIES:
        raise ValueError(
            f"write_policy must be one of {', '.join(map(repr, WRITE_POLICIES))}, "
            f"got {write_policy!r}"
        )

    if directory is None and write_policy == "on_eviction":
        _warn_no_effect()
    return write_policy


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
        # 0 is valid: in disk mode every read then comes from the file.
        memory = _byte_count("memory_capacity", memory_capacity)

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
        # Absolute now: a later os.chdir() must not move the cache file, and
        # a worker process started elsewhere must find it.
        directory = Path(os.fspath(disk_path)).absolute()
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"disk_path must be a directory, but {str(directory)!r} is a file")
        capacity = _positive_int("disk_capacity", disk_capacity)

    policy = _write_policy(write_policy, directory)

    readers: int | None = None
    if max_readers is not None:
        readers = _integer("max_readers", max_readers, "an int or None")
        if readers < 1:
            raise ValueError(f"max_readers must be at least 1, got {readers}")

    return CacheOptions(memory, directory, capacity, policy, readers)
