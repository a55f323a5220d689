"""Deterministic benchmark data generated with numpy.

Every batch is generated from its own ``numpy.random.Generator`` seeded with
``(SEED, batch_index)``, so the data is identical across runs, processes and
interpreters, and every batch owns its buffers (no batch is a slice of a
larger allocation). Rows are 36 bytes: ``id`` int64, ``key`` int64,
``value`` float64 and ``tag``, an 8-character string (4-byte offset + 8 bytes),
so 5M rows are 180 MB.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

SEED = 20240611
"""Root seed of every generated batch."""

N_KEYS = 1_000
"""Cardinality of the ``key`` column."""

N_TAGS = 64
"""Cardinality of the ``tag`` column (the group-by key)."""

TAG_WIDTH = 8
"""Length in bytes of every ``tag`` value."""

ROW_BYTES = 8 + 8 + 8 + 4 + TAG_WIDTH
"""Arrow buffer bytes per row (validity bitmaps are absent: no nulls)."""

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("key", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("tag", pa.string(), nullable=False),
    ]
)
"""Schema of every generated batch."""

_TAG_VOCABULARY = np.frombuffer(
    b"".join(f"tag{i:05d}".encode() for i in range(N_TAGS)), dtype=np.uint8
).reshape(N_TAGS, TAG_WIDTH)


def make_batch(index: int, rows: int, first_row: int) -> pa.RecordBatch:
    """Generate batch number ``index`` with ``rows`` rows and fresh buffers.

    Parameters
    ----------
    index : int
        Batch number; selects the random stream.
    rows : int
        Number of rows.
    first_row : int
        Value of ``id`` in the first row (``id`` is the global row number).

    Returns
    -------
    pyarrow.RecordBatch
        A batch whose four columns wrap numpy allocations made for it alone.
    """
    rng = np.random.default_rng([SEED, index])
    ids = np.arange(first_row, first_row + rows, dtype=np.int64)
    keys = rng.integers(0, N_KEYS, size=rows, dtype=np.int64)
    values = rng.random(rows)
    tag_data = _TAG_VOCABULARY[rng.integers(0, N_TAGS, size=rows)].reshape(-1)
    tag_offsets = np.arange(0, (rows + 1) * TAG_WIDTH, TAG_WIDTH, dtype=np.int32)
    tags = pa.StringArray.from_buffers(rows, pa.py_buffer(tag_offsets), pa.py_buffer(tag_data))
    return pa.RecordBatch.from_arrays(
        [pa.array(ids), pa.array(keys), pa.array(values), tags], schema=SCHEMA
    )


def iter_batches(total_rows: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Lazily generate ``total_rows`` rows in batches of ``batch_rows``.

    Parameters
    ----------
    total_rows : int
        Rows over all batches.
    batch_rows : int
        Rows per batch; the last batch holds the remainder.

    Yields
    ------
    pyarrow.RecordBatch
        The batches in order, each generated on demand.
    """
    first_row = 0
    index = 0
    while first_row < total_rows:
        rows = min(batch_rows, total_rows - first_row)
        yield make_batch(index, rows, first_row)
        first_row += rows
        index += 1


def make_batches(total_rows: int, batch_rows: int) -> list[pa.RecordBatch]:
    """Generate all batches of :func:`iter_batches` eagerly.

    Parameters
    ----------
    total_rows : int
        Rows over all batches.
    batch_rows : int
        Rows per batch.

    Returns
    -------
    list of pyarrow.RecordBatch
    """
    return list(iter_batches(total_rows, batch_rows))


def source(batches: list[pa.RecordBatch]) -> pa.RecordBatchReader:
    """Return a fresh one-shot stream over ``batches`` (no copy).

    Parameters
    ----------
    batches : list of pyarrow.RecordBatch
        Batches to stream.

    Returns
    -------
    pyarrow.RecordBatchReader
        With the batches' schema (:data:`SCHEMA` when there are none).
    """
    schema = batches[0].schema if batches else SCHEMA
    return pa.RecordBatchReader.from_batches(schema, iter(batches))


def lazy_source(total_bytes: int, batch_rows: int) -> tuple[pa.RecordBatchReader, int]:
    """Return a one-shot stream generating about ``total_bytes`` on demand.

    Only the batch in flight exists in memory, so the source itself adds one
    batch to the footprint of whatever consumes it.

    Parameters
    ----------
    total_bytes : int
        Approximate Arrow buffer size of the whole stream.
    batch_rows : int
        Rows per batch.

    Returns
    -------
    tuple of (pyarrow.RecordBatchReader, int)
        The reader and its exact number of rows.
    """
    total_rows = max(batch_rows, total_bytes // ROW_BYTES)
    reader = pa.RecordBatchReader.from_batches(SCHEMA, iter_batches(total_rows, batch_rows))
    return reader, total_rows


TIMED_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us"), nullable=False),
        pa.field("key", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("tag", pa.string(), nullable=False),
    ]
)
"""Schema of the time-ordered data set: ``ts`` in place of ``id``, same 36 bytes a row."""

TIMED_START_US = 1_704_067_200_000_000
"""``ts`` of row 0: 2024-01-01 00:00:00 UTC, in microseconds."""

TIMED_STEP_US = 1_000
"""``ts`` grows by 1 ms a row: the rows arrive in time order, as events do."""


def make_timed_batch(index: int, rows: int, first_row: int) -> pa.RecordBatch:
    """Batch ``index`` of the time-ordered data set: :func:`make_batch` with ``ts`` for ``id``.

    Parameters
    ----------
    index : int
        Batch number; selects the random stream.
    rows : int
        Number of rows.
    first_row : int
        Global number of the batch's first row.

    Returns
    -------
    pyarrow.RecordBatch
    """
    batch = make_batch(index, rows, first_row)
    ts = TIMED_START_US + batch.column(0).to_numpy() * TIMED_STEP_US
    columns = [pa.array(ts, pa.timestamp("us")), *batch.columns[1:]]
    return pa.RecordBatch.from_arrays(columns, schema=TIMED_SCHEMA)


def make_timed_batches(total_rows: int, batch_rows: int) -> list[pa.RecordBatch]:
    """All batches of the time-ordered data set of ``total_rows`` rows.

    Parameters
    ----------
    total_rows : int
        Rows over all batches.
    batch_rows : int
        Rows per batch.

    Returns
    -------
    list of pyarrow.RecordBatch
    """
    batches = []
    for first_row in range(0, total_rows, batch_rows):
        rows = min(batch_rows, total_rows - first_row)
        batches.append(make_timed_batch(len(batches), rows, first_row))
    return batches


def timed_range(total_rows: int, start: float, fraction: float) -> tuple[int, int]:
    """``ts`` bounds (microseconds, lower included) of ``fraction`` of the rows from ``start``.

    Parameters
    ----------
    total_rows : int
        Rows of the data set.
    start : float
        Where the range starts, as a fraction of the rows (0.5: the middle).
    fraction : float
        Share of the rows inside the range (0.01: 1%).

    Returns
    -------
    tuple of int
    """
    first = int(total_rows * start)
    last = first + int(total_rows * fraction)
    return (
        TIMED_START_US + first * TIMED_STEP_US,
        TIMED_START_US + last * TIMED_STEP_US,
    )


def batches_nbytes(batches: list[pa.RecordBatch]) -> int:
    """Return the Arrow buffer size of ``batches`` in bytes."""
    return sum(batch.nbytes for batch in batches)
