"""The few things that differ between our batchcorder and PyPI's 0.1.3.

Both distributions are imported as ``batchcorder``, so a process sees exactly
one of them; the worker running in the reference virtualenv sees 0.1.3.
Case modules ask this module which one is loaded and which registration paths
exist instead of importing engine adapters themselves.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from bcbench import data

REFERENCE_VERSION = "0.1.3"
"""The PyPI release the harness compares against."""


@dataclass(frozen=True)
class Implementation:
    """The ``batchcorder`` this process imported.

    Attributes
    ----------
    module : module
        The imported ``batchcorder`` package.
    version : str
        Its distribution version.
    location : str
        Where it was imported from.
    """

    module: Any
    version: str
    location: str

    @property
    def is_reference(self) -> bool:
        """Whether this is PyPI's ``batchcorder`` 0.1.3."""
        return self.version == REFERENCE_VERSION

    @property
    def label(self) -> str:
        """Short name used in reports."""
        return f"batchcorder {self.version}" + (" (PyPI reference)" if self.is_reference else "")

    def memory_cache(self, batches: list[pa.RecordBatch], **options: Any) -> Any:
        """Return a fully ingested memory-mode cache over ``batches``."""
        cache = self.module.StreamCache(data.source(batches), **options)
        cache.ingest_all()
        return cache

    def disk_cache(
        self, batches: list[pa.RecordBatch], directory: Path, hot_bytes: int, **options: Any
    ) -> Any:
        """Return a fully ingested disk-mode cache over ``batches``.

        Parameters
        ----------
        batches : list of pyarrow.RecordBatch
            Data to cache.
        directory : Path
            Cache directory (``disk_path``).
        hot_bytes : int
            Hot-layer budget (``memory_capacity``).
        **options
            Further ``StreamCache`` keyword arguments.
        """
        cache = self.disk_cache_lazy(data.source(batches), directory, hot_bytes, **options)
        cache.ingest_all()
        return cache

    def disk_cache_lazy(
        self, reader: pa.RecordBatchReader, directory: Path, hot_bytes: int, **options: Any
    ) -> Any:
        """Return a disk-mode cache over ``reader`` without ingesting it."""
        return self.module.StreamCache(
            reader,
            memory_capacity=hot_bytes,
            disk_path=str(directory),
            disk_capacity=1 << 40,
            **options,
        )

    def adapter(self, engine: str) -> Any | None:
        """Return ``batchcorder.adapters.<engine>`` or ``None`` if absent."""
        if self.is_reference:
            return None
        try:
            return importlib.import_module(f"batchcorder.adapters.{engine}")
        except ImportError:
            return None

    def generic_register(self) -> Callable[[Any, str, Any], Any] | None:
        """Return ``batchcorder.register`` or ``None`` if absent."""
        return getattr(self.module, "register", None)


def load() -> Implementation:
    """Import ``batchcorder`` and describe it.

    Returns
    -------
    Implementation
    """
    module = importlib.import_module("batchcorder")
    return Implementation(module=module, version=_version_of(module), location=str(module.__file__))


def _version_of(module: Any) -> str:
    """Return the version of the distribution ``module`` was imported from.

    ``importlib.metadata.version`` searches ``sys.path`` in order and the
    editable install leaves ``batchcorder.egg-info`` in the repository root,
    so from there it would report our version for the reference too. The
    dist-info directory beside the imported package is authoritative; an
    editable install has none and falls back to the metadata search.
    """
    site = Path(module.__file__).resolve().parent.parent
    for dist_info in sorted(site.glob("batchcorder-*.dist-info")):
        metadata = importlib.metadata.PathDistribution(dist_info)
        if metadata.version:
            return str(metadata.version)
    try:
        return importlib.metadata.version("batchcorder")
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def drain_python(cache: Any) -> int:
    """Replay ``cache`` from batch 0 with Python iteration; return the rows."""
    rows = 0
    for batch in cache.reader():
        rows += batch.num_rows
    return rows


def drain_stream(obj: Any) -> pa.Table:
    """Import ``obj.__arrow_c_stream__()`` into pyarrow and read it whole."""
    return pa.RecordBatchReader.from_stream(obj).read_all()
