"""``batchcorder.register`` and ``batchcorder.scan``: a cache in whichever engine is asked for.

The engine is recognised from the module of the target's class, so no engine
is imported unless the target comes from it; the adapter module is imported
only then.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any

from batchcorder._dataset import check_cache
from batchcorder._engines import engine_of_target

if TYPE_CHECKING:
    import polars as pl

    from batchcorder._protocol import Replayable

__all__ = ["register", "scan"]

_SUPPORTED = (
    "a DuckDB connection (duckdb.DuckDBPyConnection, or the duckdb module for its default "
    "connection), a polars.SQLContext or a datafusion.SessionContext"
)


def register(target: Any, name: str, cache: Replayable, **options: Any) -> Any:
    """Register ``cache`` as table ``name`` in the engine ``target`` belongs to.

    Dispatches to ``batchcorder.adapters.<engine>.register``; see each adapter
    for how many cache readers its queries consume and whether registration
    reads the whole cache. Registering a name that is already registered
    replaces that table, in every engine.

    Parameters
    ----------
    target : duckdb.DuckDBPyConnection, duckdb, polars.SQLContext or datafusion.SessionContext
        The engine object to register with. The ``duckdb`` module itself
        stands for DuckDB's default connection, the one ``duckdb.sql`` uses.
    name : str
        The table name SQL statements use.
    cache : Replayable
        The cache to register.
    **options
        Options of the engine's adapter, passed on: ``pushdown`` for DuckDB
        (see ``batchcorder.adapters.duckdb.register``). Polars and DataFusion
        take none.

    Returns
    -------
    duckdb.DuckDBPyRelation, polars.LazyFrame or datafusion.DataFrame
        The engine's handle on the registered table.

    Raises
    ------
    TypeError
        If ``target`` is none of the supported engine objects, ``name`` is not
        a ``str``, ``cache`` is not a cache, or an option is one the engine
        does not take.
    ValueError
        If ``name`` is empty.

    Examples
    --------
    >>> import pyarrow as pa
    >>> import batchcorder
    >>> cache = batchcorder.StreamCache(pa.table({"x": [1, 2, 3]}))
    >>> batchcorder.register(object(), "t", cache)
    Traceback (most recent call last):
    ...
    TypeError: cannot register a cache with object: supported targets are a DuckDB connection (duckdb.DuckDBPyConnection, or the duckdb module for its default connection), a polars.SQLContext or a datafusion.SessionContext
    >>> import duckdb
    >>> _ = batchcorder.register(duckdb.connect(), "t", cache, pushdown=False)
    >>> batchcorder.register(duckdb.connect(), "t", cache, push_down=False)
    Traceback (most recent call last):
    ...
    TypeError: register() got an unknown option 'push_down' for DuckDB; DuckDB takes: pushdown
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError("name must be a non-empty table name, got ''")
    check_cache(cache, "batchcorder.register")
    if isinstance(target, ModuleType) and target.__name__ == "duckdb":
        # DuckDB's own module-level API (duckdb.sql, duckdb.register) runs on
        # its default connection.
        default = target.default_connection
        target = default() if callable(default) else default
    engine = engine_of_target(type(target).__module__.partition(".")[0])
    if engine is not None and engine.target_class is not None:
        # The target's own package is imported already, since it made the target.
        expected = getattr(importlib.import_module(engine.module), engine.target_class)
        if isinstance(target, expected):
            adapter = importlib.import_module(engine.adapter)
            _check_options(adapter.register, options, engine.label)
            return adapter.register(target, name, cache, **options)
        raise TypeError(
            f"cannot register a cache with {type(target).__module__}.{type(target).__name__}: "
            f"expected {engine.target}; supported targets are {_SUPPORTED}"
        )
    raise TypeError(
        f"cannot register a cache with {type(target).__name__}: supported targets are {_SUPPORTED}"
    )


def _check_options(adapter_register: Any, options: dict[str, Any], engine: str) -> None:
    """Refuse an option the engine's ``register`` does not take, naming it and the engine."""
    known = [
        parameter.name
        for parameter in inspect.signature(adapter_register).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for option in options:
        if option not in known:
            takes = f"{engine} takes: {', '.join(known)}" if known else f"{engine} takes none"
            raise TypeError(f"register() got an unknown option {option!r} for {engine}; {takes}")


def scan(cache: Replayable) -> pl.LazyFrame:
    """A Polars ``LazyFrame`` over ``cache``, re-collectable, with projection and filter pushdown.

    The same as ``batchcorder.adapters.polars.scan``: nothing is read until a
    ``collect``, and each scan of each ``collect`` replays the cache through a
    new reader. Polars is imported by this call, not by ``import batchcorder``.

    Parameters
    ----------
    cache : Replayable
        The cache to read.

    Returns
    -------
    polars.LazyFrame

    Raises
    ------
    TypeError
        If ``cache`` is not a cache.
    ModuleNotFoundError
        If Polars is not installed; the message says
        ``pip install 'batchcorder[polars]'``.

    Examples
    --------
    >>> import polars as pl
    >>> import pyarrow as pa
    >>> import batchcorder
    >>> cache = batchcorder.StreamCache(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    >>> lf = batchcorder.scan(cache)
    >>> lf.filter(pl.col("k") > 1).select("v").collect()["v"].to_list()
    ['b', 'c']
    >>> lf.select(pl.col("k").sum()).collect().item()
    6
    """
    check_cache(cache, "batchcorder.scan")
    adapter = importlib.import_module("batchcorder.adapters.polars")
    frame: pl.LazyFrame = adapter.scan(cache)
    return frame
