"""The scan layer: which batches, and which rows of them, a filter needs.

- :mod:`~batchcorder._scan.tree`: the nodes of a filter's tree.
- :mod:`~batchcorder._scan.arrow_format`: the only module reading pyarrow's
  private serialisation of an ``Expression`` (into a tree, and back).
- :mod:`~batchcorder._scan.statistics`: per-batch, per-column bounds, nulls
  and NaN, computed when first asked for.
- :mod:`~batchcorder._scan.predicates`: the three-valued evaluation of a tree
  over those statistics: which batches may hold a kept row, which are kept
  whole; only filters that :func:`~batchcorder._scan.predicates.cannot_raise`.
- :mod:`~batchcorder._scan.engine_semantics`: filters rewritten to answer as
  DuckDB, DataFusion or Polars do (NaN order, ``IN`` with nulls).
- :mod:`~batchcorder._scan.rows`: the rows of one batch a filter keeps,
  with pyarrow's ``RecordBatch.filter(expression)``.

Nothing here imports an engine, or ``pyarrow.dataset``.
"""
