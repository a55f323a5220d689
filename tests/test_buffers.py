"""Byte accounting: every buffer counted once, dictionaries at any depth included.

Internal parts under test: ``batchcorder._buffers``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from batchcorder import StreamCache
from batchcorder._buffers import BufferLedger, batch_buffers


def nested_dictionary_batch(index: int) -> pa.RecordBatch:
    words = pa.array([f"{index}-{j}-" + "x" * 1000 for j in range(200)]).dictionary_encode()
    struct = pa.StructArray.from_arrays([words], names=["d"])
    listed = pa.ListArray.from_arrays(pa.array(range(201), pa.int32()), words)
    return pa.record_batch([struct, listed], names=["s", "l"])


def test_dictionaries_nested_in_structs_and_lists_are_counted() -> None:
    batch = nested_dictionary_batch(0)
    dictionary = batch.column("s").field("d").dictionary
    addresses = {buffer.address for buffer in batch_buffers(batch)}
    assert all(buffer.address in addresses for buffer in dictionary.buffers() if buffer is not None)
    ledger = BufferLedger()
    ledger.add(batch)
    # The dictionary is shared by both columns: counted once.
    assert ledger.bytes == batch.get_total_buffer_size()
    ledger.remove(batch)
    assert ledger.bytes == 0


def test_hot_layer_respects_memory_capacity_with_nested_dictionaries(tmp_path: Path) -> None:
    batches = [nested_dictionary_batch(index) for index in range(5)]
    capacity = 2 * batches[0].get_total_buffer_size()
    source = pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches))
    with StreamCache(
        source, disk_path=tmp_path, disk_capacity=1 << 30, memory_capacity=capacity
    ) as cache:
        for _ in cache.reader():
            assert cache.stats.memory_bytes <= capacity
        assert 1 <= cache.stats.memory_batches <= 2
