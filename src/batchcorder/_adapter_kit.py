"""What the engine adapters (``batchcorder.adapters.*``) use of the core, in one place.

An adapter imports the public API (``batchcorder``, ``batchcorder.errors``)
and this module, nothing else of the package's private modules: what is
here is the seam between the core and the engines, kept stable when the core
moves. Importing it is light: the scan layer's names (which import
``pyarrow.dataset``, ``pyarrow.compute`` or numpy) are imported when first
used.

Contents
--------
- Engines: :func:`require_engine`.
- A cache's life: :func:`lifetime_of`, :class:`Lifetime`,
  :func:`released_at_close`, :func:`closed_dataset`.
- A cache's batches: :func:`check_cache`, :func:`snapshot`,
  :func:`dataset_contents`, :func:`logical_nbytes`.
- The scan layer: :class:`CacheDataset`, :func:`arrow_can_filter`,
  :class:`BatchStatistics`, :class:`Selection`, :func:`select_batches`, the
  tree nodes :class:`Call`, :class:`FieldRef`, :class:`Literal`, ``Node``.
- :class:`Memo`, the bounded memo of recent answers.
- Engine panics: :func:`panics_raised`, :func:`polars_panics_raised`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from batchcorder._dataset import check_cache, dataset_contents, snapshot
from batchcorder._engines import require_engine
from batchcorder._lifetime import Lifetime, closed_dataset, lifetime_of, released_at_close
from batchcorder._memo import Memo
from batchcorder._panics import panics_raised, polars_panics_raised
from batchcorder._scan.tree import Call, FieldRef, Literal, Node
from batchcorder._types import logical_nbytes

if TYPE_CHECKING:
    from batchcorder._cache_dataset import CacheDataset, arrow_can_filter
    from batchcorder._scan.predicates import Selection, select_batches
    from batchcorder._scan.statistics import BatchStatistics

__all__ = [
    "BatchStatistics",
    "CacheDataset",
    "Call",
    "FieldRef",
    "Lifetime",
    "Literal",
    "Memo",
    "Node",
    "Selection",
    "arrow_can_filter",
    "check_cache",
    "closed_dataset",
    "dataset_contents",
    "lifetime_of",
    "logical_nbytes",
    "panics_raised",
    "polars_panics_raised",
    "released_at_close",
    "require_engine",
    "select_batches",
    "snapshot",
]

#: Names imported on first use (they import ``pyarrow.dataset``), and their module.
_LAZY = {
    "CacheDataset": "batchcorder._cache_dataset",
    "arrow_can_filter": "batchcorder._cache_dataset",
    "BatchStatistics": "batchcorder._scan.statistics",
    "Selection": "batchcorder._scan.predicates",
    "select_batches": "batchcorder._scan.predicates",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
