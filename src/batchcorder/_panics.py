"""Engine panics (``pyo3_runtime.PanicException``) told apart and raised as ordinary errors.

Each Rust extension built with PyO3 (Polars, DataFusion) has its own
``PanicException`` class, always named so in the module ``pyo3_runtime``, and
deriving from ``BaseException``; none is importable by a stable path.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from batchcorder.errors import EnginePanicError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TypeVar

    T = TypeVar("T")

__all__ = ["is_engine_panic", "panics_raised", "polars_panics_raised"]


def is_engine_panic(error: BaseException) -> bool:
    """Whether ``error`` is a Rust engine's panic.

    Examples
    --------
    >>> is_engine_panic(ValueError("no"))
    False
    >>> panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    >>> is_engine_panic(panic("index out of bounds"))
    True
    """
    return any(
        kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"
        for kind in type(error).__mro__
    )


@contextlib.contextmanager
def panics_raised(engine: str) -> Iterator[None]:
    """Raise an engine's panic in the block as :class:`EnginePanicError` naming ``engine``.

    Examples
    --------
    >>> panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    >>> try:
    ...     with panics_raised("DataFusion"):
    ...         raise panic("capacity overflow")
    ... except EnginePanicError as error:
    ...     print(error)
    DataFusion panicked: capacity overflow
    """
    try:
        yield
    except BaseException as error:
        if is_engine_panic(error):
            raise EnginePanicError(engine, error) from error
        raise


def polars_panics_raised(items: Iterator[T]) -> Iterator[T]:
    """``items``, with a Polars panic while producing them raised as :class:`EnginePanicError`.

    Examples
    --------
    >>> panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    >>> def frames():
    ...     yield 1
    ...     raise panic("index out of bounds")
    >>> try:
    ...     list(polars_panics_raised(frames()))
    ... except EnginePanicError as error:
    ...     print(error, type(error.__cause__).__name__)
    Polars panicked: index out of bounds PanicException
    """
    try:
        yield from items
    except BaseException as error:
        if is_engine_panic(error):
            raise EnginePanicError("Polars", error) from error
        raise
