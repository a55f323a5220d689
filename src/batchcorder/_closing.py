"""``ClosesOnExit``: the context-manager protocol of everything that has a ``close()``."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

__all__ = ["ClosesOnExit"]

_Self = TypeVar("_Self", bound="ClosesOnExit")


class ClosesOnExit:
    """Mixin: ``with thing:`` calls ``thing.close()`` on the way out, however it ends.

    Examples
    --------
    >>> class Resource(ClosesOnExit):
    ...     def close(self) -> None:
    ...         print("closed")
    >>> with Resource():
    ...     pass
    closed
    """

    #: Defined by each subclass.
    close: Callable[[], None]

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
