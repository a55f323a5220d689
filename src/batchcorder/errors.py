"""Exceptions raised by batchcorder.

Misuse raises the built-in :class:`TypeError` and :class:`ValueError` with a
message naming the argument; problems with the cache file keep the
:class:`OSError` family, and an upstream stream's own exception reaches every
reader unchanged.
"""

from __future__ import annotations

import errno

__all__ = ["DiskCapacityError"]


class DiskCapacityError(OSError):
    """The next batch would take the cache file past ``disk_capacity``.

    Raised before anything is written, so every batch already in the cache
    stays readable. It is an :class:`OSError` with ``errno.ENOSPC``.

    Examples
    --------
    >>> import pyarrow as pa, tempfile
    >>> from batchcorder import StreamCache
    >>> from batchcorder.errors import DiskCapacityError
    >>> table = pa.table({"x": list(range(1000))})
    >>> cache = StreamCache(table, disk_path=tempfile.mkdtemp(), disk_capacity=64)
    >>> try:
    ...     cache.ingest_all()
    ... except DiskCapacityError as error:
    ...     print(error.errno == errno.ENOSPC, "disk_capacity" in str(error))
    True True
    >>> cache.close()
    """

    def __init__(self, needed_bytes: int, used_bytes: int, capacity_bytes: int) -> None:
        super().__init__(
            errno.ENOSPC,
            f"cache file would exceed disk_capacity={capacity_bytes} bytes: "
            f"{used_bytes} bytes used, the next batch needs {needed_bytes} more",
        )
        self.needed_bytes = needed_bytes
        self.used_bytes = used_bytes
        self.capacity_bytes = capacity_bytes
