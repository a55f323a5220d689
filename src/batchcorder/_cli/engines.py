"""The SQL engines the command drives: DuckDB, Polars and DataFusion, imported when used.

A session starts before the source is read (so a missing engine or a SQL
argument holding two statements fails at once), gets the cache registered as
one table and runs statements; each result is a ``pyarrow.RecordBatchReader``,
or None for a statement that returns no table (DDL, ``SET``, DML's row counts).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from batchcorder import register
from batchcorder._cli.errors import CLIError, EngineCrash, engine_panic, one_line
from batchcorder._cli.interrupts import bounded_stop, interrupted, run_interruptibly
from batchcorder._engines import require_engine

__all__ = ["Engine", "check_statements", "open_engine", "run_statement"]

T = TypeVar("T")


#: Comments, and a statement's first word past comments and brackets.
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_FIRST_WORD = re.compile(rf"(?:\s|\(|{_COMMENTS.pattern})*(\w*)", re.DOTALL)


def split_statements(sql: str) -> list[str]:
    """The statements in ``sql``, cut at the semicolons SQLite's tokenizer says end one.

    Examples
    --------
    >>> split_statements("SELECT 1; SELECT ';' AS s -- a comment; still one")
    ['SELECT 1;', " SELECT ';' AS s -- a comment; still one"]
    >>> split_statements("SELECT 1;; -- the end"), split_statements(" -- nothing")
    (['SELECT 1;'], [])
    """
    pieces, start = [], 0
    for end in (index + 1 for index, char in enumerate(sql) if char == ";"):
        if sqlite3.complete_statement(sql[start:end]):
            pieces.append(sql[start:end])
            start = end
    pieces.append(sql[start:])
    return [piece for piece in pieces if _COMMENTS.sub("", piece).strip(" \t\r\n;")]


def first_keyword(sql: str) -> str:
    """The first word of a statement, upper-cased, past comments and brackets.

    Examples
    --------
    >>> first_keyword("/* a view */ (create view v as select 1")
    'CREATE'
    """
    return _FIRST_WORD.match(sql).group(1).upper()  # type: ignore[union-attr]


class Engine:
    """One engine session: ``register`` the cache, ``execute`` statements, ``close``.

    ``errors``: what it raises for a bad statement; ``run``: work Ctrl-C can stop.
    """

    name: ClassVar[str]
    label: ClassVar[str]  # the engine's name in messages
    errors: tuple[type[BaseException], ...] = (Exception,)
    context: Any  # the session the cache is registered in

    def register(self, table: str, cache: Any) -> None:
        register(self.context, table, cache)

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        raise NotImplementedError

    def describe(self, error: BaseException) -> str:
        return one_line(error)

    def run(self, work: Callable[[], T]) -> T:
        with bounded_stop():
            return work()

    def close(self) -> None:
        """Release the session. Idempotent."""


class DuckDBEngine(Engine):
    """DuckDB in a worker thread, stopped by ``interrupt``; its parse tells what returns a table."""

    name = "duckdb"
    label = "DuckDB"

    def __init__(self) -> None:
        import duckdb

        self.duckdb = duckdb
        self.errors = (duckdb.Error, pa.ArrowException)
        self.connection = self.context = duckdb.connect()

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        relation = self.connection.sql(sql)
        if relation is None or not self._returns_table(sql):
            return None
        return relation.to_arrow_reader()

    def _returns_table(self, sql: str) -> bool:
        (statement,) = self.connection.extract_statements(sql)
        if statement.type.name in {"INSERT", "UPDATE", "DELETE", "MERGE_INTO"}:
            encoded = sql.encode()  # tokenize gives offsets in UTF-8 bytes
            return any(  # no other keyword starts with RETURNING
                kind == self.duckdb.token_type.keyword
                and encoded[offset : offset + 9].upper() == b"RETURNING"
                for offset, kind in self.duckdb.tokenize(sql)
            )
        return list(statement.expected_result_type) == [self.duckdb.ExpectedResultType.QUERY_RESULT]

    def run(self, work: Callable[[], T]) -> T:
        with bounded_stop():
            return run_interruptibly(work, self.connection.interrupt)

    def close(self) -> None:
        self.connection.close()  # idempotent


#: ``CREATE [OR REPLACE] [TEMP] VIEW [IF NOT EXISTS] name AS query``, which Polars lacks.
_CREATE_VIEW = re.compile(
    r"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?VIEW\s+"
    r"(?P<if_not_exists>IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_]*)\s+AS\s+(?P<query>.+)",
    re.IGNORECASE | re.DOTALL,
)
#: Statements after which Polars hands back a status (``CREATE TABLE t``) or an
#: emptied table rather than a result.
_POLARS_NO_RESULT = frozenset({"CREATE", "DROP", "TRUNCATE"})
#: Polars explains an unsupported statement with the parser's whole syntax tree.
_SYNTAX_TREE = re.compile(r"(not supported:\s*\w+)\s*[({].*", re.DOTALL)


class PolarsEngine(Engine):
    """Polars' SQL context; ``CREATE VIEW v AS query`` registers the query's LazyFrame as ``v``."""

    name = "polars"
    label = "Polars"

    def __init__(self) -> None:
        import polars as pl

        self.errors = (pl.exceptions.PolarsError, pa.ArrowException)
        self.context = pl.SQLContext()

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        first = _FIRST_WORD.match(sql)
        assert first is not None  # the pattern also matches nothing
        view = _CREATE_VIEW.fullmatch(sql, first.start(1))
        if view is not None:
            self._create_view(view)
            return None
        frame = self.context.execute(sql, eager=True)
        if first.group(1).upper() in _POLARS_NO_RESULT or not frame.columns:
            return None
        return frame.to_arrow().to_reader()

    def describe(self, error: BaseException) -> str:
        return one_line(_SYNTAX_TREE.sub(r"\1", str(error)) or error)

    def _create_view(self, view: re.Match[str]) -> None:
        name = view.group("name")
        if name.startswith('"'):
            name = name[1:-1].replace('""', '"')
        exists = name in self.context.tables()
        if exists and view.group("if_not_exists"):
            return
        if exists and not view.group("replace"):
            import polars as pl

            raise pl.exceptions.SQLInterfaceError(f"relation {name!r} already exists")
        self.context.register(name, self.context.execute(view.group("query"), eager=False))


class DataFusionEngine(Engine):
    """DataFusion: DDL runs when planned; DML and ``COPY`` when their row count is read."""

    name = "datafusion"
    label = "DataFusion"
    # DataFusion raises plain Exception (and ValueError) for bad statements.
    errors = (Exception,)
    _COUNTING_PLANS = frozenset({"DmlStatement", "CopyTo"})

    def __init__(self) -> None:
        import datafusion

        self.context = datafusion.SessionContext()

    def execute(self, sql: str) -> pa.RecordBatchReader | None:
        frame = self.context.sql(sql)
        reader = pa.RecordBatchReader.from_stream(frame)
        try:
            plan = type(frame.logical_plan().to_variant()).__name__
        except Exception:  # a plan the bindings cannot describe: a query
            plan = ""
        if reader.schema.names and plan not in self._COUNTING_PLANS:
            return reader
        for _ in reader:  # run it: DML does its work as its result is read
            pass
        return None


_ENGINE_CLASSES = {engine.name: engine for engine in (DuckDBEngine, PolarsEngine, DataFusionEngine)}


def open_engine(name: str) -> Engine:
    """Start a session of engine ``name``; a :class:`CLIError` if it is not installed.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from batchcorder import StreamCache
    >>> engine = open_engine("duckdb")
    >>> engine.register("src", StreamCache(pa.table({"x": [1, 2, 3]})))
    >>> engine.execute("SELECT count(*) AS n FROM src").read_all().to_pylist()
    [{'n': 3}]
    >>> engine.execute("CREATE VIEW big AS SELECT * FROM src WHERE x > 1") is None
    True
    """
    try:
        require_engine(name, "batchcorder")
    except ImportError as error:
        raise CLIError(str(error)) from error
    return _ENGINE_CLASSES[name]()


def check_statements(statements: list[str]) -> None:
    """Refuse, before the source is read, a SQL argument holding several statements or none.

    They are counted by DuckDB's parser where it takes them, else by SQLite's tokenizer.

    Examples
    --------
    >>> check_statements(["SELECT 1", "SELECT 1; SELECT 2"])
    Traceback (most recent call last):
    ...
    batchcorder._cli.errors.CLIError: SQL argument 2 holds 2 statements: give each statement as its own argument, e.g. query SOURCE "SELECT ..." "SELECT ..."
    """
    for number, sql in enumerate(statements, start=1):
        try:
            import duckdb

            count = len(duckdb.extract_statements(sql))
        except Exception:  # no DuckDB, or SQL its parser does not take
            count = len(split_statements(sql))
        if count == 0:
            raise CLIError(f"SQL argument {number} holds no statement")
        if count > 1:
            raise CLIError(
                f"SQL argument {number} holds {count} statements: give each statement as "
                'its own argument, e.g. query SOURCE "SELECT ..." "SELECT ..."'
            )


def run_statement(
    engine: Engine,
    number: int,
    sql: str,
    consume: Callable[[pa.RecordBatchReader], T],
) -> T | None:
    """Run statement ``number``; hand its result to ``consume`` and return what that returns.

    None, and ``consume`` is not called, for a statement that returns no
    table. The engine's errors become :class:`CLIError` (its message on one
    line), its panics :class:`EngineCrash`.
    """
    try:
        result = engine.execute(sql)
        return None if result is None else consume(result)
    except (CLIError, OSError):
        raise
    except BaseException as error:
        panic = engine_panic(error, engine.label)
        if panic is not None:
            raise EngineCrash(f"SQL statement {number} failed: {one_line(panic)}") from panic
        if not isinstance(error, engine.errors):
            raise
        if interrupted():  # the engine wrapped the KeyboardInterrupt in its own error
            raise KeyboardInterrupt from error
        raise CLIError(
            f"SQL statement {number} failed in {engine.name}: {engine.describe(error)}"
        ) from error
