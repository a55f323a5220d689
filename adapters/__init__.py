"""Engine adapters: query a :class:`~batchcorder.StreamCache` from DuckDB, Polars and DataFusion.

One module per engine, each imported only when asked for, so ``import
batchcorder`` never imports an engine:

- :mod:`batchcorder.adapters.duckdb` -- ``register(con, name, cache)``, a
  pyarrow Dataset view (:func:`batchcorder.dataset`) with projection and
  filter pushdown; the lazy path (``con.register(name, cache)`` or a
  replacement scan) needs no adapter.
- :mod:`batchcorder.adapters.polars` -- ``scan(cache)``, a re-collectable
  ``LazyFrame`` built on Polars' IO-plugin API, and ``register(ctx, name,
  cache)`` for a ``polars.SQLContext``.
- :mod:`batchcorder.adapters.datafusion` -- ``register(ctx, name, cache)``, an
  in-memory table over the cache's zero-copy batches.
- :mod:`batchcorder.adapters.ray` -- ``read(cache)``, a ``ray.data.Dataset``
  whose read tasks map ranges of a finished cache file in Ray's workers
  (through Ray's object store for a cache without one).

:func:`batchcorder.register` picks the right one from the engine object, and
:func:`batchcorder.scan` is the Polars ``scan``. A function that needs an
engine that is not installed raises ``ModuleNotFoundError`` naming the extra
that installs it (``pip install 'batchcorder[polars]'``). Registering a name
again replaces the table, in every engine.

Readers and ingestion per engine and path
-----------------------------------------
=========================================  ===========================  ==========================
path                                       cache readers                forces full ingestion
=========================================  ===========================  ==========================
DuckDB ``duckdb.sql("... FROM cache")``    1 per query                  no (LIMIT stops early)
DuckDB ``con.register(name, cache)``       1 per table reference        no (LIMIT stops early)
DuckDB adapter ``register``                1, at registration           yes, at registration
Polars ``scan`` / ``register``             1 per scan node per collect  no (``head`` stops early)
DataFusion adapter ``register``            1, at registration           yes, at registration
=========================================  ===========================  ==========================
"""

from __future__ import annotations

__all__ = ["datafusion", "duckdb", "polars", "ray"]


def __dir__() -> list[str]:
    return list(__all__)
