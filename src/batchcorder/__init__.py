"""batchcorder: make a one-shot Arrow record-batch stream replayable.

Wrap any object implementing ``__arrow_c_stream__`` in a :class:`StreamCache`;
it pulls the upstream lazily and exactly once, and any number of readers
replay it from batch 0, concurrently. Engine adapters live in
``batchcorder.adapters.duckdb``, ``.polars`` and ``.datafusion``; no engine is
imported until one of them is.

Examples
--------
>>> import pyarrow as pa
>>> import batchcorder
>>> cache = batchcorder.StreamCache(pa.table({"x": [1, 2, 3]}))
>>> [pa.table(cache).num_rows for _ in range(3)]
[3, 3, 3]
"""

from __future__ import annotations

from batchcorder._cache import StreamCache
from batchcorder._casting import CastingStreamCache
from batchcorder._reader import StreamCacheReader
from batchcorder._register import register
from batchcorder._stats import CacheStats
from batchcorder.errors import DiskCapacityError

__all__ = [
    "CacheStats",
    "CastingStreamCache",
    "DiskCapacityError",
    "StreamCache",
    "StreamCacheReader",
    "__version__",
    "register",
]

__version__ = "0.2.0"
