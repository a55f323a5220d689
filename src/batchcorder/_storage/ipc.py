"""Appending batches to an Arrow IPC file and reading one back by its offset.

Two layouts share one interface. Schemas without dictionary-encoded fields
use the Arrow IPC *file* format: one schema, one message per batch, and a
footer once the upstream is exhausted, so ``pyarrow.ipc.open_file``, Polars
``scan_ipc`` and DataFusion ``register_arrow`` read the finished file. The
IPC file format cannot carry a dictionary that changes between batches, so
schemas with dictionary fields write each batch as a self-contained IPC
stream (schema, dictionaries, batch, end marker) one after another.

Every byte goes through a :class:`~batchcorder._storage.sink.PositionedSink`,
so a batch's location is returned only once all of its bytes are written.
Reading is zero-copy: a batch is decoded from a slice of a memory map.
"""

from __future__ import annotations

import struct
from typing import Protocol

import pyarrow as pa

from batchcorder._storage.sink import PositionedSink
from batchcorder._types import holds_dictionary

__all__ = ["IpcAppender", "open_appender"]

# The file's leading magic ("ARROW1" and two bytes of padding), then the
# schema message: a continuation marker and a little-endian metadata length.
_FILE_MAGIC = 8
_MESSAGE_PREFIX = 8


class IpcAppender(Protocol):
    """Writes batches to a cache file and reads them back from a mapping of it."""

    #: Whether the finished file is one Arrow IPC file (``pyarrow.ipc.open_file`` reads it).
    is_single_file: bool

    @property
    def size(self) -> int:
        """Bytes written so far."""

    def bytes_needed(self, batch: pa.RecordBatch) -> int:
        """Bytes appending ``batch`` and then finishing the file will add, at most."""

    def append(self, batch: pa.RecordBatch) -> tuple[int, int]:
        """Write ``batch``; return the (offset, length) to read it back."""

    def bytes_to_finish(self) -> int:
        """Bytes :meth:`finish` will write."""

    def finish(self) -> None:
        """No more batches: complete the file."""

    def read(self, mapped: pa.Buffer, offset: int, length: int) -> pa.RecordBatch:
        """Decode the batch at ``offset`` of ``mapped`` without copying it."""


class _FileFraming:
    """What the IPC file writer adds around the batch messages of ``schema``, in bytes.

    Measured once per cache by writing files of zero, one and two empty
    batches in memory with the same writer that writes the cache file: the
    leading magic and schema message come with the first batch, and the
    footer holds the schema again plus one fixed-size block per batch.
    """

    def __init__(self, schema: pa.Schema) -> None:
        empty = pa.RecordBatch.from_pylist([], schema=schema)
        message: int = pa.ipc.get_record_batch_size(empty)
        finish: list[int] = []
        for count in range(3):
            sink = pa.BufferOutputStream()
            writer = pa.ipc.new_file(sink, schema)
            for _ in range(count):
                writer.write_batch(empty)
            written: int = sink.tell()
            writer.close()
            finish.append(sink.tell() - written)
            if count == 1:
                self.header = written - message
        self._finish_empty = finish[0]
        self._footer_one = finish[1]
        self._footer_per_batch = finish[2] - finish[1]

    def footer(self, batches: int) -> int:
        """Bytes closing a file that holds ``batches`` batches (and its header if none)."""
        if batches == 0:
            return self._finish_empty
        return self._footer_one + self._footer_per_batch * (batches - 1)


class _FileLayout:
    is_single_file = True

    def __init__(self, sink: PositionedSink, schema: pa.Schema) -> None:
        self._sink = sink
        self._schema = schema
        self._writer = pa.ipc.new_file(pa.PythonFile(sink, mode="w"), schema)
        self._framing = _FileFraming(schema)
        self._count = 0

    @property
    def size(self) -> int:
        return self._sink.tell()

    def bytes_needed(self, batch: pa.RecordBatch) -> int:
        header = self._framing.header if self._count == 0 else 0
        message: int = pa.ipc.get_record_batch_size(batch)
        return header + message + self._framing.footer(self._count + 1)

    def append(self, batch: pa.RecordBatch) -> tuple[int, int]:
        start = self._sink.tell()
        self._writer.write_batch(batch)
        end = self._sink.tell()
        if self._count == 0:
            # The writer emits the magic and the schema with the first batch;
            # the batch's own message starts after them.
            _, metadata_length = struct.unpack(
                "<Ii", self._sink.read_at(_MESSAGE_PREFIX, _FILE_MAGIC)
            )
            start = _FILE_MAGIC + _MESSAGE_PREFIX + metadata_length
        self._count += 1
        return start, end - start

    def bytes_to_finish(self) -> int:
        return self._framing.footer(self._count)

    def finish(self) -> None:
        self._writer.close()

    def read(self, mapped: pa.Buffer, offset: int, length: int) -> pa.RecordBatch:
        message = pa.ipc.read_message(mapped.slice(offset, length))
        return pa.ipc.read_record_batch(message, self._schema)


class _StreamSegmentLayout:
    is_single_file = False

    def __init__(self, sink: PositionedSink, schema: pa.Schema) -> None:
        self._sink = sink
        self._schema = schema
        # bytes_needed() encodes the batch; append() of the same batch reuses it.
        self._encoded: tuple[pa.RecordBatch, pa.Buffer] | None = None

    @property
    def size(self) -> int:
        return self._sink.tell()

    def bytes_needed(self, batch: pa.RecordBatch) -> int:
        encoded: int = self._encode(batch).size
        return encoded

    def _encode(self, batch: pa.RecordBatch) -> pa.Buffer:
        if self._encoded is not None and self._encoded[0] is batch:
            return self._encoded[1]
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self._schema) as writer:
            writer.write_batch(batch)
        segment = sink.getvalue()
        self._encoded = (batch, segment)
        return segment

    def append(self, batch: pa.RecordBatch) -> tuple[int, int]:
        segment = self._encode(batch)
        self._encoded = None
        start = self._sink.tell()
        self._sink.write(segment)
        return start, segment.size

    def bytes_to_finish(self) -> int:
        return 0

    def finish(self) -> None:
        pass

    def read(self, mapped: pa.Buffer, offset: int, length: int) -> pa.RecordBatch:
        return pa.ipc.open_stream(mapped.slice(offset, length)).read_next_batch()


def open_appender(sink: PositionedSink, schema: pa.Schema) -> IpcAppender:
    """Pick the layout for ``schema`` and start writing to ``sink``."""
    if any(holds_dictionary(field.type) for field in schema):
        return _StreamSegmentLayout(sink, schema)
    return _FileLayout(sink, schema)
