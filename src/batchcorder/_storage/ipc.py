"""Appending batches to an Arrow IPC file and reading one back by its offset.

Two layouts share one interface. Schemas without dictionary-encoded fields
use the Arrow IPC *file* format: one schema, one message per batch, and a
footer once the upstream is exhausted, so ``pyarrow.ipc.open_file``, Polars
``scan_ipc`` and DataFusion ``register_arrow`` read the finished file. The
IPC file format cannot carry a dictionary that changes between batches, so
schemas with dictionary fields write each batch as a self-contained IPC
stream (schema, dictionaries, batch, end marker) one after another.

Reading is zero-copy: a batch is decoded from a slice of a memory map.
"""

from __future__ import annotations

import io
import struct

import pyarrow as pa

__all__ = ["IpcAppender", "open_appender"]

# Continuation marker and length prefix before every message, and the
# file's leading magic with its padding.
_MESSAGE_PREFIX = 8
_FILE_MAGIC = 8
# Per-batch entry of the footer (offset, metadata length, body length),
# generously rounded, plus the fixed part of the footer.
_FOOTER_PER_BATCH = 32
_FOOTER_FIXED = 64


def _has_dictionary(data_type: pa.DataType) -> bool:
    if isinstance(data_type, pa.BaseExtensionType):
        return _has_dictionary(data_type.storage_type)
    if pa.types.is_dictionary(data_type):
        return True
    return any(_has_dictionary(data_type.field(i).type) for i in range(data_type.num_fields))


class IpcAppender:
    """Writes batches to ``file`` and reads them back from a mapped buffer."""

    def __init__(self, file: io.RawIOBase, schema: pa.Schema) -> None:
        self._file = file
        self._schema = schema
        self._sink = pa.PythonFile(file, mode="w")
        self._size = 0
        self._count = 0

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def bytes_needed(self, batch: pa.RecordBatch) -> int:
        """Upper bound of the bytes appending ``batch`` and finishing will take."""
        raise NotImplementedError

    def append(self, batch: pa.RecordBatch) -> tuple[int, int]:
        """Write ``batch``; return the (offset, length) to read it back."""
        raise NotImplementedError

    def finish(self) -> None:
        """No more batches: complete the file."""

    def bytes_to_finish(self) -> int:
        """Bytes finish() will write."""
        return 0

    def read(self, mapped: pa.Buffer, offset: int, length: int) -> pa.RecordBatch:
        """Decode the batch at ``offset`` of ``mapped`` without copying it."""
        raise NotImplementedError


class _FileLayout(IpcAppender):
    def __init__(self, file: io.RawIOBase, schema: pa.Schema) -> None:
        super().__init__(file, schema)
        self._writer = pa.ipc.new_file(self._sink, schema)
        self._header_bytes = _FILE_MAGIC + _MESSAGE_PREFIX + schema.serialize().size

    def bytes_needed(self, batch: pa.RecordBatch) -> int:
        header = self._header_bytes if self._count == 0 else 0
        footer = self._header_bytes + _FOOTER_FIXED + _FOOTER_PER_BATCH * (self._count + 1)
        return header + _MESSAGE_PREFIX + pa.ipc.get_record_batch_size(batch) + footer

    def append(self, batch: pa.RecordBatch) -> tuple[int, int]:
        start = self._size
        self._writer.write_batch(batch)
        end = self._file.tell()
        if self._count == 0:
            # The writer emits the magic and the schema with the first batch;
            # the batch's own message starts after them.
            self._file.seek(_FILE_MAGIC)
            _, metadata_length = struct.unpack("<Ii", self._file.read(_MESSAGE_PREFIX))
            self._file.seek(end)
            start = _FILE_MAGIC + _MESSAGE_PREFIX + metadata_length
        self._size = end
        self._count += 1
        return start, end - start

    def bytes_to_finish(self) -> int:
        header = self._header_bytes if self._count == 0 else 0
        return header + self._header_bytes + _FOOTER_FIXED + _FOOTER_PER_BATCH * self._count

    def finish(self) -> None:
        self._writer.close()
        self._size = self._file.tell()

    def read(self, mapped: pa.Buffer, offset: int, length: int) -> pa.RecordBatch:
        message = pa.ipc.read_message(mapped.slice(offset, length))
        return pa.ipc.read_record_batch(message, self._schema)


class _StreamSegmentLayout(IpcAppender):
    def __init__(self, file: io.RawIOBase, schema: pa.Schema) -> None:
        super().__init__(file, schema)
        # bytes_needed() encodes the batch; append() of the same batch reuses it.
        self._encoded: tuple[pa.RecordBatch, pa.Buffer] | None = None

    def bytes_needed(self, batch: pa.RecordBatch) -> int:
        return self._encode(batch).size

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
        self._sink.write(segment)
        start = self._size
        self._size += segment.size
        self._count += 1
        return start, segment.size

    def read(self, mapped: pa.Buffer, offset: int, length: int) -> pa.RecordBatch:
        return pa.ipc.open_stream(mapped.slice(offset, length)).read_next_batch()


def open_appender(file: io.RawIOBase, schema: pa.Schema) -> IpcAppender:
    """Pick the layout for ``schema`` and start writing to ``file``."""
    if any(_has_dictionary(field.type) for field in schema):
        return _StreamSegmentLayout(file, schema)
    return _FileLayout(file, schema)
