"""Ray Data: a cache as a ``ray.data.Dataset``, read by Ray's own read tasks from the cache file.

:func:`read` builds the dataset through Ray's extension point for sources,
:class:`ray.data.Datasource` and :func:`ray.data.read_datasource`:

- **A finished disk-mode cache** (``cache.complete_file`` is set once the
  upstream is exhausted; :func:`read` ingests the rest first) is read in
  place. Each read task covers one contiguous range of the file's record
  batches: it maps the file, memory-mapped and zero-copy, in the Ray worker
  and yields those batches as blocks. Rows and bytes of every task come from
  the batches' metadata, so planning reads no data. Column projection is
  pushed into the read: ``columns=...``, and the columns Ray itself prunes
  (``select_columns``, ``drop_columns``...), are the only ones a task hands
  to Ray. The read tasks run on the node that holds the file (the driver's);
  the blocks reach consumers on other nodes through Ray's object store.
- **Any other cache** (memory mode, ``write_policy="on_eviction"``,
  dictionary-encoded fields, a cast view, a :class:`~batchcorder.CacheFileView`
  is read in place too) has no single file other processes can open, so its
  batches are copied into Ray's object store once, at :func:`read`, and the
  dataset is built from those objects (:func:`ray.data.from_arrow_refs`).

Either dataset is re-executable: every ``iter_batches``, every epoch of a
``streaming_split``, every ``map_batches`` reads the cache again, and the
cache's upstream is never read twice.

Lifetime: a dataset read in place keeps the cache alive (it holds it), so its
file stays as long as the dataset may read it, also once the caller has
dropped its own handle of the cache. ``cache.close()`` ends it for the
dataset too: every operation that reads rows then raises
:class:`~batchcorder.errors.CacheClosedError` naming the file (a
``ValueError``) — ``count()``, ``take()``, ``sum()``, ``iter_batches()``,
``materialize()``... On the driver the error is raised as it is; from a read
task already running, Ray raises it as ``RayTaskError(CacheClosedError)``,
an instance of ``CacheClosedError`` too. So that ``count()`` does not answer
from the read tasks' metadata after ``close()``, the tasks declare their
bytes but not their rows: ``count()`` runs them, reading no column (a
median of 72 ms for a million rows in 16 batches on a loaded two-core
machine, against 0.2 ms from metadata). A dataset from the object store does not depend
on the cache after :func:`read`.

``import batchcorder`` never imports Ray; this module imports it when
:func:`read` runs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import ray.data

    from batchcorder import CacheFileView, CastingStreamCache, StreamCache

__all__ = ["read"]


def __dir__() -> list[str]:
    return list(__all__)


#: The object-store path groups batches into tables of about this many bytes.
_OBJECT_BYTES = 128 << 20
#: Bytes a read task covers when the caller does not set the task count. Ray
#: asks for ~200 tasks whatever the size, and each costs ~30 ms to schedule and
#: start: 114 one-batch tasks read 256 MiB in 4.0 s, 8 tasks of 32 MiB in 0.6 s.
_TASK_BYTES = 32 << 20


def read(
    cache: StreamCache | CastingStreamCache | CacheFileView,
    *,
    columns: Sequence[str] | None = None,
    override_num_blocks: int | None = None,
    **read_options: Any,
) -> ray.data.Dataset:
    """A Ray ``Dataset`` of every row of ``cache``, re-readable any number of times.

    Parameters
    ----------
    cache : StreamCache, CastingStreamCache or CacheFileView
        The cache to read. The rest of its upstream is ingested now.
    columns : sequence of str, optional
        Read only these columns, in this order (pushed into the read tasks).
    override_num_blocks : int, optional
        Read-task count for a cache read in place; never more tasks than the
        file has batches. By default each task covers about 32 MiB of the
        file (at least two tasks).
    **read_options
        Passed to :func:`ray.data.read_datasource` for the read tasks of a
        cache read in place, such as ``num_cpus=0.5`` or ``concurrency=2``. A
        cache copied into the object store has no read tasks: they are unused.

    Returns
    -------
    ray.data.Dataset
        In place over a finished disk-mode cache file; otherwise a
        materialized dataset in Ray's object store.

    Raises
    ------
    TypeError
        If ``cache`` is not a cache, or ``columns`` is not a sequence of str.
    ValueError
        If ``columns`` names a column the cache lacks.
    CacheClosedError
        If the cache is closed (a ``ValueError``).
    ModuleNotFoundError
        If Ray is not installed (``pip install 'batchcorder[ray]'``).

    Examples
    --------
    >>> import tempfile
    >>> import pyarrow as pa
    >>> import ray
    >>> from batchcorder import StreamCache
    >>> from batchcorder.adapters.ray import read
    >>> _ = ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    >>> table = pa.table({"k": range(6), "v": [f"v{n}" for n in range(6)]})
    >>> cache = StreamCache(table.to_reader(max_chunksize=2),
    ...                     disk_path=tempfile.mkdtemp(), disk_capacity=1 << 20)
    >>> ds = read(cache, columns=["k"])
    >>> ds.count(), ds.sum("k")
    (6, 15)
    >>> ds.schema().names
    ['k']
    >>> cache.close()
    >>> ds.take_all()
    Traceback (most recent call last):
    ...
    batchcorder.errors.CacheClosedError: StreamCache is closed: the cache was closed or its file removed, ...
    >>> ds.count()
    Traceback (most recent call last):
    ...
    batchcorder.errors.CacheClosedError: StreamCache is closed: the cache was closed or its file removed, ...
    """
    from batchcorder import CacheFileView, CastingStreamCache, StreamCache
    from batchcorder._adapter_kit import lifetime_of, require_engine
    from batchcorder.errors import CacheClosedError

    require_engine("ray", "batchcorder.adapters.ray.read")
    import ray.data

    if not isinstance(cache, (StreamCache, CastingStreamCache, CacheFileView)):
        raise TypeError(
            "cache must be a batchcorder.StreamCache, its cast view or a CacheFileView, got "
            f"{type(cache).__name__}"
        )
    selected = _validated_columns(cache.schema, columns)
    view: CacheFileView | None = None
    owner: StreamCache | None = None
    if isinstance(cache, CacheFileView):
        view = cache
    elif isinstance(cache, StreamCache):
        if cache.closed:
            raise CacheClosedError(cache.disk_file)
        cache.ingest_all()
        if cache.complete_file is not None:
            view, owner = CacheFileView(cache), cache
    if view is not None:
        source = _datasource_class()(view, selected, owner)
        if override_num_blocks is None:
            override_num_blocks = _task_count(
                view.num_batches, source.estimate_inmemory_data_size()
            )
        dataset: ray.data.Dataset = ray.data.read_datasource(
            source,
            override_num_blocks=override_num_blocks,
            **read_options,
        )
        if owner is not None:
            lifetime_of(owner).on_close(dataset, _forget_row_count)
        return dataset
    # A CacheFileView, having a file, was read from it above.
    assert not isinstance(cache, CacheFileView)
    # Ray's put() returns ray.ObjectRef, and from_arrow_refs() is annotated with
    # the unrelated placeholder class ray.types.ObjectRef: Ray's types disagree.
    return ray.data.from_arrow_refs(_put_tables(cache, selected))  # type: ignore[arg-type]


def _forget_row_count(dataset: ray.data.Dataset) -> None:
    """At ``close()``: stop Ray answering ``count()`` from what it remembers of the dataset.

    Ray keeps the row count of a dataset it has iterated to the end (also an
    iteration that ends after ``close()``, on blocks read before it) and
    answers ``count()`` from it without running a task. The dataset's memo is
    replaced by one that keeps no row count, so ``count()`` runs the read
    tasks, which raise ``CacheClosedError``.
    """
    remembered = getattr(dataset, "_cache", None)
    if remembered is None or not hasattr(remembered, "get_num_rows"):
        return
    memo_class = type(remembered)

    # A base known only at run time (Ray's private memo class): the checker needs a static one.
    class ForgetsRowCount(memo_class):  # type: ignore[misc, valid-type]
        def get_num_rows(self, dag: Any) -> None:
            return None

        def set_num_rows(self, dag: Any, num_rows: int) -> None:
            return None

    try:
        dataset._cache = ForgetsRowCount()
    except TypeError:  # another Ray, whose memo takes arguments: left as it is
        return


def _task_count(num_batches: int, nbytes: int) -> int:
    """Read tasks of about ``_TASK_BYTES`` each, at least two (Ray runs them in parallel)."""
    return max(1, min(num_batches, max(2, -(-nbytes // _TASK_BYTES))))


def _validated_columns(schema: pa.Schema, columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str) or not all(isinstance(name, str) for name in columns):
        raise TypeError(f"columns must be a sequence of str, got {columns!r}")
    missing = [name for name in columns if name not in schema.names]
    if missing:
        raise ValueError(f"columns {missing} are not in the cache's schema {schema.names}")
    return list(columns)


def _put_tables(
    cache: StreamCache | CastingStreamCache, columns: list[str] | None
) -> list[ray.ObjectRef[pa.Table]]:
    """Copy the cache's batches into Ray's object store, in tables of about ``_OBJECT_BYTES``."""
    import ray

    schema = (
        cache.schema if columns is None else pa.schema([cache.schema.field(c) for c in columns])
    )
    refs: list[ray.ObjectRef[pa.Table]] = []
    group: list[pa.RecordBatch] = []
    group_bytes = 0
    with cache.reader() as reader:
        for batch in reader:
            projected = _projected(batch, columns)
            group.append(projected)
            group_bytes += projected.get_total_buffer_size()
            if group_bytes >= _OBJECT_BYTES:
                refs.append(ray.put(pa.Table.from_batches(group, schema=schema)))
                group, group_bytes = [], 0
    if group or not refs:
        refs.append(ray.put(pa.Table.from_batches(group, schema=schema)))
    return refs


#: The column Ray's own readers put in a block that keeps no column (Ray's
#: ``_BATCH_SIZE_PRESERVING_STUB_COL_NAME``, hidden from ``Dataset.schema()``).
#: Ray counts a block without columns as empty, so ``count()``, which reads
#: no column, would answer 0.
_ROW_STUB = "__bsp_stub"


def _read_range(view: CacheFileView, columns: list[str] | None) -> Iterator[pa.Table]:
    """The blocks of one read task: its batches, projected, as one-batch tables (zero-copy).

    With no column to read (``count()``), each block is the batch's row count
    as Ray's own readers give it: one column of nulls, which has no buffer.
    """
    for batch in view:
        if columns == []:
            yield pa.table({_ROW_STUB: pa.nulls(batch.num_rows)})
        else:
            yield pa.Table.from_batches([_projected(batch, columns)])


class _CacheFileSource:
    """Read tasks over contiguous batch ranges of a finished cache file.

    The methods of a ``ray.data.Datasource``; :func:`_datasource_class` mixes
    them into a subclass of it when Ray is first used, so that importing this
    module does not import Ray. The datasource holds the view, and the view
    its cache: while Ray's plan holds the datasource, the cache (and its file)
    stay. Pickled (to a Ray actor), the view travels as the file's path and
    range.
    """

    _projection_map: dict[str, str] | None

    def __init__(
        self, view: CacheFileView, columns: list[str] | None, owner: StreamCache | None
    ) -> None:
        super().__init__()
        self._view = view
        self._columns = columns
        self._projection_map = None
        # The cache the file belongs to, on the driver only (never pickled).
        self._owner = owner

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to a Ray process: the file travels, not the cache, and the
        # view without its cache pickles even after close() (then it raises
        # CacheClosedError at its first read, where Ray reports it).
        return {**self.__dict__, "_owner": None, "_view": self._view._detached()}

    def __copy__(self) -> _CacheFileSource:
        # Ray copies the datasource to push a projection into it: the copy
        # must still hold the cache (its lifetime, and the close() check).
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def get_name(self) -> str:
        return "batchcorder"

    def supports_projection_pushdown(self) -> bool:
        return True

    def _selected(self) -> list[str] | None:
        """The columns to read: ``columns`` narrowed by Ray's own projection."""
        pushed = self._projection_map
        if pushed is None:
            return self._columns
        names = self._columns if self._columns is not None else self._view.schema.names
        return [name for name in names if name in pushed]

    def _check_open(self) -> None:
        """Raise ``CacheClosedError`` naming the file once the cache is closed (on the driver)."""
        from batchcorder.errors import CacheClosedError

        if self._owner is not None and self._owner.closed:
            raise CacheClosedError(self._view.path)

    def estimate_inmemory_data_size(self) -> int | None:
        self._check_open()
        columns = self._selected()
        view = self._view
        size: int = sum(
            _projected(view.batch(index), columns).get_total_buffer_size()
            for index in range(view.num_batches)
        )
        return size

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: Any = None,
    ) -> list[Any]:
        from ray.data.block import BlockMetadata
        from ray.data.datasource import ReadTask

        self._check_open()
        columns = self._selected()
        view = self._view
        schema = view.schema
        if columns == []:
            schema = pa.schema([(_ROW_STUB, pa.null())])
        elif columns is not None:
            schema = pa.schema([schema.field(name) for name in columns])
        tasks = []
        for part in view.split(max(1, min(parallelism, view.num_batches))):
            metadata = BlockMetadata(
                # Unknown on purpose: Ray answers count() from known row counts
                # without running a task, so it would still answer after close().
                num_rows=None,
                size_bytes=sum(
                    _projected(batch, columns).get_total_buffer_size() for batch in part
                ),
                # A tuple, as Ray declares (and converts a list to).
                input_files=(str(view.path),),
                exec_stats=None,
            )
            tasks.append(
                ReadTask(
                    # Pickles as the range's file path, identity and range, not
                    # its data; without the cache, so that it pickles after
                    # close() too and the task raises CacheClosedError.
                    functools.partial(_read_range, part._detached(), columns),
                    metadata,
                    schema=schema,
                    per_task_row_limit=per_task_row_limit,
                )
            )
        return tasks

    @property
    def supports_distributed_reads(self) -> bool:
        # The file lives on the driver's machine: read tasks run there.
        return False


def _projected(batch: pa.RecordBatch, columns: list[str] | None) -> pa.RecordBatch:
    return batch if columns is None else batch.select(columns)


def _datasource_class() -> type:
    """``_CacheFileDatasource``: :class:`_CacheFileSource` as a ``ray.data.Datasource``."""
    import ray.data

    cls = globals().get("_CacheFileDatasource")
    if cls is None:
        cls = type("_CacheFileDatasource", (_CacheFileSource, ray.data.Datasource), {})
        cls.__module__ = __name__
        # Module-level, so pickle finds the class by name (see __getattr__).
        globals()["_CacheFileDatasource"] = cls
    return cls


def __getattr__(name: str) -> Any:
    # Unpickling a datasource in a Ray worker looks the class up by name.
    if name == "_CacheFileDatasource":
        return _datasource_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
