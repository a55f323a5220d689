"""Checking each upstream batch against the schema the upstream declared.

``pyarrow.RecordBatchReader.from_batches`` (and many producers behind the
Arrow C stream interface) hand on whatever batches they are given. A batch
whose columns differ from the declared schema would be stored and replayed
as-is, and an engine trusting the declared schema would read its buffers as
the wrong type: a silent wrong answer. Every batch is therefore checked once,
at ingestion.
"""

from __future__ import annotations

import pyarrow as pa

from batchcorder.errors import SchemaMismatchError

__all__ = ["conform_batch"]


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema, position: int) -> pa.RecordBatch:
    """``batch`` under ``schema``, or :class:`SchemaMismatchError` if its columns differ.

    Field names and types must match exactly. A batch that differs only in
    schema metadata, field metadata or a field's nullable flag is served under
    the declared schema (zero-copy), unless a field declared non-nullable
    holds nulls.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        Batch ``position`` as the upstream produced it.
    schema : pyarrow.Schema
        The schema the upstream declared.
    position : int
        The batch's index in the stream, for the error message.

    Raises
    ------
    SchemaMismatchError
        Naming the first field that differs, its declared type and the batch's.

    Examples
    --------
    >>> import pyarrow as pa
    >>> declared = pa.schema([pa.field("x", pa.int64())], metadata={"origin": "db"})
    >>> conform_batch(pa.record_batch({"x": [1]}), declared, 0).schema.metadata
    {b'origin': b'db'}
    >>> conform_batch(pa.record_batch({"x": [1.5]}), declared, 3)
    Traceback (most recent call last):
    ...
    batchcorder.errors.SchemaMismatchError: upstream batch 3 does not match the declared schema: field 'x' is declared int64, the batch has double
    """
    found = batch.schema
    if found.equals(schema, check_metadata=True):
        return batch
    problem = _difference(found, schema)
    if problem is not None:
        raise SchemaMismatchError(position, problem)
    # Same names and types: only metadata or nullability differ.
    for index, field in enumerate(schema):
        if not field.nullable and batch.column(index).null_count:
            raise SchemaMismatchError(
                position,
                f"field {field.name!r} is declared not nullable, the batch has "
                f"{batch.column(index).null_count} nulls in it",
            )
    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def _difference(found: pa.Schema, declared: pa.Schema) -> str | None:
    """The first way ``found`` differs from ``declared`` in names or types, in words; None if none."""
    for index, field in enumerate(declared):
        if index >= len(found):
            return f"field {field.name!r} ({field.type}) is missing from the batch"
        other = found.field(index)
        if other.name != field.name:
            return f"field {index} is declared {field.name!r}, the batch has {other.name!r}"
        if not other.type.equals(field.type):
            return f"field {field.name!r} is declared {field.type}, the batch has {other.type}"
    if len(found) > len(declared):
        return f"the batch has fields the schema does not declare: {found.names[len(declared) :]}"
    return None
