"""The engines batchcorder plugs into, in one table, and importing one when it is needed.

:data:`ENGINES` is the one list of engines: ``batchcorder.register`` finds
the adapter of a target in it, :func:`require_engine` the extra that installs
a missing engine, the command its ``--engine`` choices (:data:`SQL_ENGINES`),
and the tests the engines they compare.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["ENGINES", "SQL_ENGINES", "Engine", "engine_of_target", "require_engine"]


@dataclass(frozen=True)
class Engine:
    """One engine batchcorder has an adapter for.

    Attributes
    ----------
    module : str
        The engine's import name (``"duckdb"``).
    label : str
        Its name in messages (``"DuckDB"``).
    extra : str
        The extra that installs it: ``pip install 'batchcorder[<extra>]'``.
    adapter : str
        The adapter module (``"batchcorder.adapters.duckdb"``).
    target_class : str or None
        The class of the engine object :func:`batchcorder.register` takes (in
        :attr:`module`); None for an engine that registers nothing (Ray reads
        a cache as a dataset).
    target : str
        What that object is, in messages.
    target_modules : tuple of str
        The top-level modules such objects' classes come from.
    """

    module: str
    label: str
    extra: str
    adapter: str
    target_class: str | None = None
    target: str = ""
    target_modules: tuple[str, ...] = ()

    @property
    def registers(self) -> bool:
        """Whether :func:`batchcorder.register` registers a cache as a table in this engine."""
        return self.target_class is not None


#: Every engine with an adapter, in the order messages list them.
ENGINES: tuple[Engine, ...] = (
    Engine(
        "duckdb",
        "DuckDB",
        "duckdb",
        "batchcorder.adapters.duckdb",
        "DuckDBPyConnection",
        "a DuckDB connection",
        # DuckDB's classes live in its compiled module "_duckdb" (1.x) or "duckdb".
        ("duckdb", "_duckdb"),
    ),
    Engine(
        "polars",
        "Polars",
        "polars",
        "batchcorder.adapters.polars",
        "SQLContext",
        "a polars.SQLContext",
        ("polars",),
    ),
    Engine(
        "datafusion",
        "DataFusion",
        "datafusion",
        "batchcorder.adapters.datafusion",
        "SessionContext",
        "a datafusion.SessionContext",
        ("datafusion",),
    ),
    Engine("ray", "Ray", "ray", "batchcorder.adapters.ray"),
)

#: The import names of the engines a cache registers in as a table and that run SQL
#: over it: the command's ``--engine`` values (the first is its default) and the
#: engines the tests compare.
SQL_ENGINES: tuple[str, ...] = tuple(engine.module for engine in ENGINES if engine.registers)


def engine_of_target(top_module: str) -> Engine | None:
    """The engine whose objects come from top-level module ``top_module``; None if none.

    Examples
    --------
    >>> engine_of_target("_duckdb").label, engine_of_target("ray")
    ('DuckDB', None)
    """
    for engine in ENGINES:
        if top_module in engine.target_modules:
            return engine
    return None


def require_engine(module: str, feature: str) -> ModuleType:
    """Import engine ``module`` for ``feature``, or say which extra installs it.

    Parameters
    ----------
    module : str
        The engine's import name (:attr:`Engine.module`).
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
        known = {engine.module: engine for engine in ENGINES}.get(module)
        label, extra = (known.label, known.extra) if known else (module, module)
        kind = ModuleNotFoundError if isinstance(error, ModuleNotFoundError) else ImportError
        raise kind(
            f"{feature} needs {label}, which cannot be imported ({error}): "
            f"pip install 'batchcorder[{extra}]'",
            name=module,
        ) from error
