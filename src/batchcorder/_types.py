"""Questions about Arrow types that several parts of the cache ask."""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

__all__ = ["holds_dictionary", "logical_nbytes"]


def holds_dictionary(data_type: pa.DataType) -> bool:
    """Whether arrays of ``data_type`` can hold a dictionary, at any depth.

    Examples
    --------
    >>> import pyarrow as pa
    >>> holds_dictionary(pa.list_(pa.dictionary(pa.int8(), pa.string())))
    True
    >>> holds_dictionary(pa.struct([("a", pa.int64())]))
    False
    """
    try:
        return _holds_dictionary_cached(data_type)
    except TypeError:  # an extension type that is not hashable
        return _holds_dictionary(data_type)


@lru_cache(maxsize=256)
def _holds_dictionary_cached(data_type: pa.DataType) -> bool:
    return _holds_dictionary(data_type)


def _holds_dictionary(data_type: pa.DataType) -> bool:
    if isinstance(data_type, pa.BaseExtensionType):
        return holds_dictionary(data_type.storage_type)
    if pa.types.is_dictionary(data_type):
        return True
    return any(holds_dictionary(data_type.field(i).type) for i in range(data_type.num_fields))


def logical_nbytes(batch: pa.RecordBatch) -> int:
    """``batch.nbytes``, or its buffers' total size where pyarrow cannot slice the type.

    pyarrow 18 computes no ``nbytes`` for ``string_view`` columns.

    Examples
    --------
    >>> import pyarrow as pa
    >>> logical_nbytes(pa.record_batch({"x": pa.array([1, 2], pa.int64())}))
    16
    """
    try:
        nbytes: int = batch.nbytes
    except pa.ArrowTypeError:
        nbytes = batch.get_total_buffer_size()
    return nbytes
