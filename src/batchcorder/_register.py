"""``batchcorder.register``: one entry point that registers a cache with whichever engine it is given.

The engine is recognised from the module of the target's class, so no engine
is imported unless the target comes from it; the adapter module is imported
only then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchcorder._cache import StreamCache
    from batchcorder._casting import CastingStreamCache

__all__ = ["register"]

#: Top-level module of the target's class -> (adapter module, class the target must be, what it is).
_ENGINES: dict[str, tuple[str, str, str, str]] = {
    "_duckdb": (
        "batchcorder.adapters.duckdb",
        "duckdb",
        "DuckDBPyConnection",
        "a DuckDB connection",
    ),
    "duckdb": (
        "batchcorder.adapters.duckdb",
        "duckdb",
        "DuckDBPyConnection",
        "a DuckDB connection",
    ),
    "polars": ("batchcorder.adapters.polars", "polars", "SQLContext", "a polars.SQLContext"),
    "datafusion": (
        "batchcorder.adapters.datafusion",
        "datafusion",
        "SessionContext",
        "a datafusion.SessionContext",
    ),
}

_SUPPORTED = (
    "a DuckDB connection (duckdb.DuckDBPyConnection), a polars.SQLContext or a "
    "datafusion.SessionContext"
)


def register(target: Any, name: str, cache: StreamCache | CastingStreamCache) -> Any:
    """Register ``cache`` as table ``name`` in the engine ``target`` belongs to.

    Dispatches to ``batchcorder.adapters.<engine>.register``; see each adapter
    for how many cache readers its queries consume and whether registration
    reads the whole cache.

    Parameters
    ----------
    target : duckdb.DuckDBPyConnection, polars.SQLContext or datafusion.SessionContext
        The engine object to register with.
    name : str
        The table name SQL statements use.
    cache : StreamCache or CastingStreamCache
        The cache to register.

    Returns
    -------
    duckdb.DuckDBPyRelation, polars.LazyFrame or datafusion.DataFrame
        The engine's handle on the registered table.

    Raises
    ------
    TypeError
        If ``target`` is none of the supported engine objects.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import batchcorder
    >>> cache = batchcorder.StreamCache(pa.table({"x": [1, 2, 3]}))
    >>> batchcorder.register(object(), "t", cache)
    Traceback (most recent call last):
    ...
    TypeError: cannot register a cache with object: supported targets are a DuckDB connection (duckdb.DuckDBPyConnection), a polars.SQLContext or a datafusion.SessionContext
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    from batchcorder._cache import StreamCache
    from batchcorder._casting import CastingStreamCache

    if not isinstance(cache, (StreamCache, CastingStreamCache)):
        raise TypeError(
            "cache must be a batchcorder.StreamCache (or its cast view), got "
            f"{type(cache).__name__}; wrap the stream with StreamCache(...) first"
        )
    engine = _ENGINES.get(type(target).__module__.partition(".")[0])
    if engine is not None:
        adapter_name, package, class_name, what = engine
        # The target's own package is imported already, since it made the target.
        expected = getattr(importlib.import_module(package), class_name)
        if isinstance(target, expected):
            adapter = importlib.import_module(adapter_name)
            return adapter.register(target, name, cache)
        raise TypeError(
            f"cannot register a cache with {type(target).__module__}.{type(target).__name__}: "
            f"expected {what}; supported targets are {_SUPPORTED}"
        )
    raise TypeError(
        f"cannot register a cache with {type(target).__name__}: supported targets are {_SUPPORTED}"
    )
