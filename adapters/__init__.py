"""Engine adapters: query a :class:`~batchcorder.StreamCache` from DuckDB, Polars and DataFusion.

One module per engine, each imported only when asked for, so ``import
batchcorder`` never imports an engine:

- :mod:`batchcorder.adapters.duckdb` -- ``register(con, name, cache)``, a
  pyarrow Dataset view with projection and filter pushdown; the lazy path
  (``con.register(name, cache)`` or a replacement scan) needs no adapter.
- :mod:`batchcorder.adapters.polars` -- ``scan(cache)``, a re-collectable
  ``LazyFrame`` built on Polars' IO-plugin API, and ``register(ctx, name,
  cache)`` for a ``polars.SQLContext``.
- :mod:`batchcorder.adapters.datafusion` -- ``register(ctx, name, cache)``, an
  in-memory table over the cache's zero-copy batches.

:func:`batchcorder.register` picks the right one from the engine object.

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

__all__: list[str] = []
