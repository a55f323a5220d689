"""Byte accounting that counts each Arrow buffer once.

Batches sliced from one table share their buffers; summing
``RecordBatch.get_total_buffer_size()`` over them counts the shared buffer
once per slice. The ledger keys buffers by address and keeps a reference
count, so the total is the memory really held.
"""

from __future__ import annotations

import pyarrow as pa

from batchcorder._types import holds_dictionary

__all__ = ["BufferLedger", "batch_buffers"]


def _array_buffers(array: pa.Array, found: list[pa.Buffer]) -> None:
    # Array.buffers() flattens children but never includes a dictionary.
    found.extend(buffer for buffer in array.buffers() if buffer is not None)
    _dictionary_buffers(array, found)


def _dictionary_buffers(array: pa.Array, found: list[pa.Buffer]) -> None:
    data_type = array.type
    if isinstance(array, pa.ExtensionArray):
        _dictionary_buffers(array.storage, found)
    elif pa.types.is_dictionary(data_type):
        _array_buffers(array.dictionary, found)
    elif pa.types.is_map(data_type):
        _dictionary_buffers(array.keys, found)
        _dictionary_buffers(array.items, found)
    elif (
        pa.types.is_list(data_type)
        or pa.types.is_large_list(data_type)
        or pa.types.is_fixed_size_list(data_type)
        or pa.types.is_list_view(data_type)
        or pa.types.is_large_list_view(data_type)
        or pa.types.is_run_end_encoded(data_type)
    ):
        _dictionary_buffers(array.values, found)
    elif pa.types.is_struct(data_type) or pa.types.is_union(data_type):
        for i in range(data_type.num_fields):
            _dictionary_buffers(array.field(i), found)


def batch_buffers(batch: pa.RecordBatch) -> list[pa.Buffer]:
    """Return the buffers behind ``batch``, dictionaries included.

    Examples
    --------
    >>> import pyarrow as pa
    >>> batch = pa.record_batch({"x": [1, 2], "s": ["a", None]})
    >>> len(batch_buffers(batch))  # validity + values, validity + offsets + data
    4
    """
    found: list[pa.Buffer] = []
    for column in batch.columns:
        found += column.buffers()
        # Array.buffers() flattens children but never includes a dictionary.
        if holds_dictionary(column.type):
            _dictionary_buffers(column, found)
    return [buffer for buffer in found if buffer is not None]


class BufferLedger:
    """Bytes held by a set of batches, each distinct buffer counted once.

    Not thread-safe: the owner serialises calls.

    Examples
    --------
    >>> import pyarrow as pa
    >>> table = pa.table({"x": list(range(1000))})
    >>> ledger = BufferLedger()
    >>> for batch in table.to_batches(max_chunksize=100):
    ...     ledger.add(batch)
    >>> ledger.bytes == table.column("x").chunks[0].buffers()[1].size
    True
    """

    def __init__(self) -> None:
        # address -> [size, number of batches holding it]
        self._held: dict[int, list[int]] = {}
        self.bytes = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """Count the buffers of ``batch``."""
        held = self._held
        for buffer in batch_buffers(batch):
            entry = held.get(buffer.address)
            if entry is None:
                held[buffer.address] = [buffer.size, 1]
                self.bytes += buffer.size
            else:
                entry[1] += 1

    def remove(self, batch: pa.RecordBatch) -> None:
        """Stop counting the buffers of ``batch`` (added earlier)."""
        held = self._held
        for buffer in batch_buffers(batch):
            entry = held.get(buffer.address)
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1] == 0:
                del held[buffer.address]
                self.bytes -= entry[0]
