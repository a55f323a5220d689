"""The SQL engines the command line drives: DuckDB, Polars and DataFusion.

Each engine gets the cache registered as one table with
``batchcorder.register`` (the engine adapters) and runs statements, returning
each result as a ``pyarrow.RecordBatchReader``. Engines are
imported only when used, so a missing optional engine only matters if asked
for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from batchcorder import register
from batchcorder._cli.errors import CLIError, one_line
from batchcorder._cli.interrupts import interrupted, run_interruptibly

__all__ = ["ENGINES", "Engine", "open_engine", "run_statement"]

T = TypeVar("T")

#: The values of ``--engine``, the default first.
ENGINES = ("duckdb", "polars", "datafusion")


class Engine:
    """One engine session with the cache registered as a table.

    Subclasses set :attr:`name`, :attr:`errors` (what the engine raises for
    a bad statement) and implement :meth:`execute`.
    """

    name: ClassVar[str]
    errors: tuple[type[BaseException], ...] = (Exception,)

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        """Run one statement; return its result, or None if it has none."""
        raise NotImplementedError

    def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` (which calls :meth:`execute`) so that Ctrl-C stops it."""
        return work()

    def close(self) -> None:
        """Release the session."""


class DuckDBEngine(Engine):
    """DuckDB: statements run in a worker thread, Ctrl-C calls ``interrupt``."""

    name = "duckdb"

    def __init__(self, cache: Any, table: str) -> None:
        import duckdb

        self.errors = (duckdb.Error, pa.ArrowException)
        self.connection = duckdb.connect()
        register(self.connection, table, cache)

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        relation = self.connection.sql(sql)
        return None if relation is None else relation.to_arrow_reader()

    def run(self, work: Callable[[], T]) -> T:
        return run_interruptibly(work, self.connection.interrupt)

    def close(self) -> None:
        self.connection.close()


class PolarsEngine(Engine):
    """Polars' SQL context over a LazyFrame; Polars handles Ctrl-C itself."""

    name = "polars"

    def __init__(self, cache: Any, table: str) -> None:
        import polars as pl

        panic = getattr(pl.exceptions, "PanicException", pl.exceptions.PolarsError)
        self.errors = (pl.exceptions.PolarsError, panic, pa.ArrowException)
        self.context = pl.SQLContext()
        register(self.context, table, cache)

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        frame = self.context.execute(sql, eager=True)
        return frame.to_arrow().to_reader()


class DataFusionEngine(Engine):
    """DataFusion's session context; DataFusion handles Ctrl-C itself."""

    name = "datafusion"
    # DataFusion raises plain Exception (and ValueError) for bad statements.
    errors = (Exception,)

    def __init__(self, cache: Any, table: str) -> None:
        import datafusion

        self.context = datafusion.SessionContext()
        register(self.context, table, cache)

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        return pa.RecordBatchReader.from_stream(self.context.sql(sql))


_ENGINE_CLASSES: dict[str, type[Any]] = {
    "duckdb": DuckDBEngine,
    "polars": PolarsEngine,
    "datafusion": DataFusionEngine,
}


def open_engine(name: str, cache: Any, table: str = "src") -> Engine:
    """Start engine ``name`` with ``cache`` registered as ``table``.

    Parameters
    ----------
    name : {"duckdb", "polars", "datafusion"}
        The engine.
    cache : StreamCache
        The cache to query.
    table : str, default "src"
        The table name in SQL.

    Returns
    -------
    Engine
        The session; close it when done.

    Raises
    ------
    CLIError
        If the engine is not installed.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> engine = open_engine("duckdb", StreamCache(pa.table({"x": [1, 2, 3]})))
    >>> engine.execute("SELECT count(*) AS n FROM src").read_all().to_pylist()
    [{'n': 3}]
    >>> engine.close()
    """
    try:
        engine_class = _ENGINE_CLASSES[name]
    except KeyError:
        raise CLIError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}") from None
    try:
        engine: Engine = engine_class(cache, table)
    except ImportError as error:
        raise CLIError(
            f"the {name} engine is not installed: pip install 'batchcorder[{name}]'"
        ) from error
    return engine


def run_statement(
    engine: Engine,
    number: int,
    sql: str,
    consume: Callable[[pa.RecordBatchReader], T],
) -> T | None:
    """Run statement ``number`` and hand its result to ``consume``.

    Parameters
    ----------
    engine : Engine
        Where to run it.
    number : int
        The statement's position (from 1), for messages.
    sql : str
        The statement.
    consume : callable
        Reads the result, e.g. :meth:`ResultWriter.write`.

    Returns
    -------
    object or None
        What ``consume`` returned; None if the statement returned no table
        (or one without columns, as ``CREATE VIEW`` does), which is then not
        handed to ``consume``.

    Raises
    ------
    CLIError
        If the engine rejects the statement or fails running it; the message
        is the engine's, on one line.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> engine = open_engine("duckdb", StreamCache(pa.table({"x": [1, 2, 3]})))
    >>> run_statement(engine, 1, "SELECT max(x) FROM src", lambda r: r.read_all()[0][0].as_py())
    3
    >>> run_statement(engine, 2, "SELECT nope FROM src", print)
    Traceback (most recent call last):
    ...
    batchcorder._cli.errors.CLIError: SQL statement 2 failed in duckdb: Binder Error: ...
    """
    try:
        result = engine.execute(sql)
        if result is None or not result.schema.names:  # DDL such as CREATE VIEW
            return None
        return consume(result)
    except (CLIError, OSError):
        raise
    except engine.errors as error:
        if interrupted():  # the engine wrapped the KeyboardInterrupt in its own error
            raise KeyboardInterrupt from error
        raise CLIError(
            f"SQL statement {number} failed in {engine.name}: {one_line(error)}"
        ) from error
