"""A cache as a Polars ``LazyFrame`` resolved at each collect (Polars' ``LazyFrameResolver``).

Polars asks a resolver, when it plans a ``collect``, for a ``LazyFrame`` with
the projection, filters and row limit of the scan node. Two answers:

- a fully ingested cache (without ``max_readers``) whose projected columns
  Polars takes without a copy (numbers, booleans, dates and times) resolves to
  a ``DataFrame`` over the cache's own batches, minus the batches the filters'
  statistics exclude, remembered for later collects with the same projection
  and filters, which then run on Polars' own memory, as over
  ``DataFrame.lazy()``. The frame is zero-copy: it holds the cache's batches,
  not a copy of them (until the ``LazyFrame`` is dropped);
- anything else (a stream still being ingested, ``max_readers``, a cast view,
  strings and other columns Polars copies) resolves to the IO-plugin scan of
  :func:`batchcorder.adapters.polars.scan`, asked again at every collect, so
  that each collect replays the cache through a fresh reader and converts no
  more than the query reads.

The filters are applied by Polars over the resolved frame, whatever the
statistics kept: skipping batches never changes a result.
"""

from __future__ import annotations

import functools
import itertools
import operator
import threading
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import polars as pl

    from batchcorder import CastingStreamCache, StreamCache

__all__ = ["resolver_frame"]

#: Zero-copy frames a scan remembers (projections and predicates; the most recent ones).
_REMEMBERED_FRAMES = 64


def resolver_frame(
    cache: StreamCache | CastingStreamCache,
    streaming: pl.LazyFrame,
    select: Callable[[list[pa.RecordBatch], pl.Expr], list[pa.RecordBatch]] | None,
) -> pl.LazyFrame | None:
    """A ``LazyFrame`` of ``cache`` through a resolver; None where Polars has no resolvers.

    Parameters
    ----------
    cache : StreamCache or CastingStreamCache
        The cache to read.
    streaming : polars.LazyFrame
        The IO-plugin scan of the cache, for what is not resolved to a frame.
    select : callable or None
        ``select(batches, predicate)``: the batches the predicate may keep,
        told from statistics; None where the cache has none (a cast view).

    Examples
    --------
    >>> import polars as pl
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> from batchcorder.adapters.polars import scan
    >>> cache = StreamCache(pa.table({"x": [1, 2, 3]}))
    >>> _ = cache.ingest_all()
    >>> scan(cache).filter(pl.col("x") > 1).select(pl.col("x").sum()).collect().item()
    5
    """
    import polars as pl

    if not hasattr(pl.LazyFrame, "from_lazyframe_resolver"):
        return None  # Polars before resolvers: the IO-plugin scan alone
    resolver_class = _resolver_class()
    return resolver_class(cache, streaming, select).lazy()


@functools.cache
def _resolver_class() -> type:
    """The resolver class (defined once Polars is imported)."""
    from polars.lazyframe.resolver import LazyFrameResolver, ResolvedLazyFrameProps

    versions = itertools.count()

    class CacheResolver(LazyFrameResolver):  # type: ignore[misc]
        """Resolves each scan node of a cache; see the module's docstring."""

        def __init__(
            self,
            cache: StreamCache | CastingStreamCache,
            streaming: pl.LazyFrame,
            select: Callable[[list[pa.RecordBatch], pl.Expr], list[pa.RecordBatch]] | None,
        ) -> None:
            self._streaming = streaming
            self._frames = _RememberedFrames(cache, select)

        def schema(self) -> Any:
            return self._streaming.collect_schema()

        def resolve_lazyframe(
            self,
            *,
            projection: list[str] | None,
            limit: int | None,
            filters: Sequence[Any],
            **_: Any,
        ) -> Any:
            predicate = (
                functools.reduce(operator.and_, [item.expr for item in filters])
                if filters
                else None
            )
            frame = self._frames.frame(projection, predicate)
            # A new version each time: Polars asks again at the next collect,
            # which raises once the cache is closed.
            version = str(next(versions))
            if frame is not None:
                return frame.lazy(), ResolvedLazyFrameProps(version_key=version)
            streaming = _streaming(self._streaming, projection, predicate, limit)
            return streaming, ResolvedLazyFrameProps(
                version_key=version, applied_filters=range(len(filters))
            )

    return CacheResolver


class _RememberedFrames:
    """:func:`_frame` of one cache, remembered per projection and predicate (batches never change)."""

    def __init__(
        self,
        cache: StreamCache | CastingStreamCache,
        select: Callable[[list[pa.RecordBatch], pl.Expr], list[pa.RecordBatch]] | None,
    ) -> None:
        self._cache = cache
        self._select = select
        # (columns, serialised predicate) -> the zero-copy frame resolved.
        # Polars may resolve several scan nodes (a self-join) at once.
        self._frames: dict[tuple[tuple[str, ...], str | None], pl.DataFrame] = {}
        self._lock = threading.Lock()

    def frame(self, projection: list[str] | None, predicate: pl.Expr | None) -> pl.DataFrame | None:
        """The frame of ``projection`` and ``predicate``; None where :func:`_frame` gives none."""
        cache, select = self._cache, self._select
        try:
            serialised = None if predicate is None else predicate.meta.serialize(format="json")
        except Exception:  # an expression Polars cannot serialise: not remembered
            return _frame(cache, select, projection, predicate)
        key = (tuple(cache.schema.names if projection is None else projection), serialised)
        with self._lock:
            if cache.closed:
                self._frames.clear()  # let go of the batches with the cache
            frame = self._frames.get(key)
            if frame is None:
                frame = _frame(cache, select, projection, predicate)
                if frame is not None:
                    if len(self._frames) >= _REMEMBERED_FRAMES:
                        self._frames.clear()
                    self._frames[key] = frame
        return frame


def _frame(
    cache: StreamCache | CastingStreamCache,
    select: Callable[[list[pa.RecordBatch], pl.Expr], list[pa.RecordBatch]] | None,
    projection: list[str] | None,
    predicate: pl.Expr | None,
) -> pl.DataFrame | None:
    """The cache's batches that ``predicate`` may keep, as one zero-copy frame; None if they cannot be."""
    from batchcorder.adapters.polars import _to_polars, _whole_cache, _zero_copy
    from batchcorder.errors import CacheClosedError

    if cache.closed:
        raise CacheClosedError()
    if select is None or not _whole_cache(cache):
        return None
    schema = cache.schema
    columns = list(schema.names) if projection is None else projection
    if not _zero_copy(pa.schema([schema.field(name) for name in columns])):
        return None
    with cache.reader() as reader:
        batches = list(reader)  # the cache's own batches: no copy
    if predicate is not None:
        batches = select(batches, predicate)
    return _to_polars(pa.Table.from_batches(batches, schema=schema).select(columns))


def _streaming(
    scan: pl.LazyFrame, projection: list[str] | None, predicate: pl.Expr | None, limit: int | None
) -> pl.LazyFrame:
    """The IO-plugin ``scan`` with the node's filters, limit and projection pushed into it."""
    if predicate is not None:
        scan = scan.filter(predicate)
    elif limit is not None:
        scan = scan.head(limit)  # the scan ingests no further
    return scan if projection is None else scan.select(projection)
