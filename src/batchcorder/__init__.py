"""batchcorder: make a one-shot Arrow record-batch stream replayable.

Wrap any object implementing ``__arrow_c_stream__`` in a :class:`StreamCache`;
it pulls the upstream lazily and exactly once, and any number of readers
replay it from batch 0, concurrently. :func:`register` puts a cache in
DuckDB, Polars or DataFusion, :func:`scan` makes it a Polars ``LazyFrame`` and
:func:`dataset` a ``pyarrow.dataset.Dataset``; the engine adapters behind them
live in ``batchcorder.adapters.duckdb``, ``.polars`` and ``.datafusion``. No
engine is imported until one of them is used.

Examples
--------
>>> import pyarrow as pa
>>> import batchcorder
>>> cache = batchcorder.StreamCache(pa.table({"x": [1, 2, 3]}))
>>> [pa.table(cache).num_rows for _ in range(3)]
[3, 3, 3]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from batchcorder.errors import (
    BatchEvictedError,
    CacheClosedError,
    CacheFileError,
    DiskCapacityError,
    EnginePanicError,
    IngestionInterruptedError,
    ReaderConsumedError,
    ReaderLimitError,
    SchemaMismatchError,
)

__all__ = [
    "BatchEvictedError",
    "CacheClosedError",
    "CacheFileError",
    "CacheFileView",
    "CacheStats",
    "CastingStreamCache",
    "DiskCapacityError",
    "EnginePanicError",
    "IngestionInterruptedError",
    "ReaderConsumedError",
    "ReaderLimitError",
    "Replayable",
    "SchemaMismatchError",
    "StreamCache",
    "StreamCacheReader",
    "__version__",
    "dataset",
    "register",
    "scan",
    "version",
]

__version__ = "0.2.0"


def version() -> str:
    """The version of batchcorder, as in ``batchcorder.__version__``.

    Examples
    --------
    >>> import batchcorder
    >>> batchcorder.version() == batchcorder.__version__
    True
    """
    return __version__


#: Public name -> the module defining it. Imported at first use, so that
#: ``import batchcorder`` (and ``batchcorder --help``) does not pay for
#: pyarrow until a cache is made.
_LAZY = {
    "StreamCache": "batchcorder._cache",
    "CastingStreamCache": "batchcorder._casting",
    "CacheStats": "batchcorder._counters",
    "dataset": "batchcorder._dataset",
    "Replayable": "batchcorder._protocol",
    "StreamCacheReader": "batchcorder._reader",
    "register": "batchcorder._register",
    "scan": "batchcorder._register",
    "CacheFileView": "batchcorder._sharing",
}

if TYPE_CHECKING:
    from batchcorder._cache import StreamCache
    from batchcorder._casting import CastingStreamCache
    from batchcorder._counters import CacheStats
    from batchcorder._dataset import dataset
    from batchcorder._protocol import Replayable
    from batchcorder._reader import StreamCacheReader
    from batchcorder._register import register, scan
    from batchcorder._sharing import CacheFileView


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchcorder' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    # The public names only, not the imports of this module.
    return list(__all__)
