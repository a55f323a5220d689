"""Importing an optional engine, naming the extra that installs it when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require_engine"]

#: Engine module -> (the engine's name, the extra that installs it).
_ENGINES: dict[str, tuple[str, str]] = {
    "duckdb": ("DuckDB", "duckdb"),
    "polars": ("Polars", "polars"),
    "datafusion": ("DataFusion", "datafusion"),
}


def require_engine(module: str, feature: str) -> ModuleType:
    """Import engine ``module`` for ``feature``, or say which extra installs it.

    Parameters
    ----------
    module : str
        The engine's import name: ``"duckdb"``, ``"polars"`` or ``"datafusion"``.
    feature : str
        What needs the engine, as the error message names it.

    Returns
    -------
    types.ModuleType
        The engine's module.

    Raises
    ------
    ModuleNotFoundError
        If the engine is not installed; the message names the
        ``pip install 'batchcorder[<extra>]'`` command. Any other
        ``ImportError`` of the engine is raised as an ``ImportError`` with the
        same advice. Either way the original error is the ``__cause__``.

    Examples
    --------
    >>> require_engine("pyarrow_engine_that_does_not_exist", "this example")
    Traceback (most recent call last):
    ...
    ModuleNotFoundError: this example needs pyarrow_engine_that_does_not_exist, which cannot be imported (No module named 'pyarrow_engine_that_does_not_exist'): pip install 'batchcorder[pyarrow_engine_that_does_not_exist]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        label, extra = _ENGINES.get(module, (module, module))
        kind = ModuleNotFoundError if isinstance(error, ModuleNotFoundError) else ImportError
        raise kind(
            f"{feature} needs {label}, which cannot be imported ({error}): "
            f"pip install 'batchcorder[{extra}]'",
            name=module,
        ) from error
