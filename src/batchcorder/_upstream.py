"""Opening the upstream stream from anything that exports ``__arrow_c_stream__``."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["open_upstream"]


def open_upstream(source: Any) -> pa.RecordBatchReader:
    """Import ``source``'s Arrow C stream as a ``pyarrow.RecordBatchReader``.

    Raises
    ------
    TypeError
        If ``source`` does not implement the Arrow PyCapsule stream interface.

    Examples
    --------
    >>> import pyarrow as pa
    >>> open_upstream(pa.table({"x": [1]})).schema
    x: int64
    >>> open_upstream([1, 2])
    Traceback (most recent call last):
    ...
    TypeError: StreamCache expects an Arrow stream: an object implementing __arrow_c_stream__ (a pyarrow RecordBatchReader or Table, a Polars DataFrame, a DuckDB relation, a DataFusion DataFrame, ...), got list
    """
    if isinstance(source, pa.RecordBatchReader):
        return source
    if not hasattr(type(source), "__arrow_c_stream__"):
        raise TypeError(
            "StreamCache expects an Arrow stream: an object implementing "
            "__arrow_c_stream__ (a pyarrow RecordBatchReader or Table, a Polars "
            "DataFrame, a DuckDB relation, a DataFusion DataFrame, ...), "
            f"got {type(source).__name__}"
        )
    if isinstance(source, pa.Table):
        return source.to_reader()
    return pa.RecordBatchReader.from_stream(source)
