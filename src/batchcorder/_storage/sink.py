"""Positioned writes that land whole or raise.

The IPC writer hands its bytes to :class:`PositionedSink` (through
``pyarrow.PythonFile``), which writes them with ``os.pwrite`` at the store's
own offset. A plain ``write`` may land partially (a filling disk, a file
size limit) and ``pyarrow.PythonFile`` ignores the count it returns, so a
batch could be indexed over bytes that were never written; and a forked
process sharing the descriptor would share its file position too. Here each
write loops until every byte is down or raises, and the position is the
sink's own.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["PositionedSink"]


class PositionedSink:
    """A write-only file object over descriptor ``fd``, writing at its own offsets.

    Parameters
    ----------
    fd : int
        An open descriptor, writable; the sink does not own it.

    Examples
    --------
    >>> import os, tempfile
    >>> fd, path = tempfile.mkstemp()
    >>> sink = PositionedSink(fd)
    >>> sink.write(b"arrow"), sink.write(memoryview(b"!")), sink.tell()
    (5, 1, 6)
    >>> os.pread(fd, 6, 0)
    b'arrow!'
    >>> os.close(fd); os.unlink(path)
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._position = 0
        self.closed = False

    def write(self, data: Buffer) -> int:
        """Write all of ``data`` at the current offset; raise OSError if any byte cannot land."""
        view = memoryview(data).cast("B")
        total = view.nbytes
        done = 0
        while done < total:
            written = os.pwrite(self._fd, view[done:], self._position + done)
            if written == 0:
                raise OSError(errno.EIO, f"the cache file took none of {total - done} bytes")
            done += written
        self._position += total
        return total

    def read_at(self, size: int, offset: int) -> bytes:
        """``size`` bytes written at ``offset``."""
        return os.pread(self._fd, size, offset)

    def tell(self) -> int:
        """Bytes written so far (the offset of the next write)."""
        return self._position

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Stop writing; the descriptor stays open for its owner."""
        self.closed = True
