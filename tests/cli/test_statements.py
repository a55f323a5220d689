"""What statements write: nothing for DDL and DML, one result per SQL argument, on every engine.

Internal parts under test: ``batchcorder._cli.engines``, ``batchcorder._engines``.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchcorder._cli.engines import first_keyword, split_statements
from batchcorder._cli.main import main
from batchcorder._engines import SQL_ENGINES

ENGINES = SQL_ENGINES
FORMATS = ("table", "csv", "json", "arrow")

#: Per engine: statements that return no table, then queries whose answers show they ran.
NO_RESULT = {
    "duckdb": [
        "CREATE VIEW big AS SELECT * FROM src WHERE id >= 2990",
        "CREATE TABLE t AS SELECT id FROM src WHERE id < 3",
        "INSERT INTO t VALUES (100), (101)",
        "UPDATE t SET id = id + 1 WHERE id >= 100",
        "DELETE FROM t WHERE id = 0",
        "SET threads = 1",
        "CREATE OR REPLACE VIEW big AS SELECT * FROM src WHERE id >= 2995",
        "DROP TABLE IF EXISTS nothing_here",
    ],
    "polars": [
        "CREATE VIEW big AS SELECT * FROM src WHERE id >= 2990",
        "CREATE TABLE t AS SELECT id FROM src WHERE id IN (1, 2, 101, 102)",
        "CREATE TABLE gone AS SELECT 1 AS x",
        "DROP TABLE gone",
        "CREATE OR REPLACE VIEW big AS SELECT * FROM src WHERE id >= 2995",
    ],
    "datafusion": [
        "CREATE VIEW big AS SELECT * FROM src WHERE id >= 2990",
        "CREATE TABLE t AS SELECT id FROM src WHERE id < 3",
        "INSERT INTO t VALUES (101), (102)",
        "DELETE FROM t WHERE id = 0",
        "SET datafusion.execution.batch_size = 1000",
        "DROP VIEW big",
        "CREATE VIEW big AS SELECT * FROM src WHERE id >= 2995",
    ],
}
QUERIES = [
    "SELECT count(*) AS n FROM big",
    "SELECT CAST(id AS BIGINT) AS id FROM t ORDER BY id",
]
ANSWERS = [[{"n": 5}], [{"id": i} for i in (1, 2, 101, 102)]]


def read_results(fmt: str, data: bytes) -> list[list[dict[str, object]]]:
    if fmt == "arrow":
        source, results = pa.BufferReader(data), []
        while source.tell() < len(data):
            results.append(pa.ipc.open_stream(source).read_all().to_pylist())
        return results
    blocks = data.decode().split("\n\n")
    if fmt == "json":
        return [[json.loads(line) for line in block.splitlines()] for block in blocks]
    if fmt == "csv":
        return [
            [dict(zip(block.splitlines()[0].replace('"', "").split(","), map(int, line.split(",")), strict=True))
             for line in block.splitlines()[1:]]
            for block in blocks
        ]  # fmt: skip
    results = []
    for block in blocks:  # the aligned table
        lines = block.splitlines()
        names = lines[0].split()
        results.append(
            [dict(zip(names, map(int, line.split()), strict=True)) for line in lines[2:-1]]
        )
    return results


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("engine", ENGINES)
def test_statements_without_a_table_write_nothing(command, stream_bytes, engine, fmt):
    result = command(
        "query", "-", *NO_RESULT[engine], *QUERIES, "-e", engine, "-f", fmt, stdin=stream_bytes
    )
    assert result.returncode == 0, result.stderr
    assert read_results(fmt, result.stdout) == ANSWERS


@pytest.mark.parametrize("engine", ENGINES)
def test_a_view_piped_on_gives_the_right_count(command, files, engine):
    """The view's result is the whole output: the next command counts its rows."""
    first = command(
        "query", files["parquet"],
        "CREATE VIEW v AS SELECT * FROM src WHERE id > 2000",
        "SELECT * FROM v",
        "-e", engine, "-f", "arrow",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    second = command(
        "query", "-", "SELECT count(*) AS n FROM src", "-f", "json", stdin=first.stdout
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {"n": 999}


def test_a_view_piped_between_two_processes(files):
    """``query ... "CREATE VIEW ..." "SELECT * FROM v" -f arrow | query - "SELECT count(*) ..."``."""
    command = [sys.executable, "-m", "batchcorder", "query"]
    with subprocess.Popen(
        [*command, str(files["parquet"]), "create view v as select * from src where id > 2000",
         "select * from v", "-f", "arrow"],
        stdout=subprocess.PIPE,
    ) as first:  # fmt: skip
        second = subprocess.run(
            [*command, "-", "select count(*) as n from src", "-f", "csv"],
            stdin=first.stdout,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert first.stdout is not None
        first.stdout.close()
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert second.stdout == b'"n"\n999\n'


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 1 AS a; SELECT 2 AS b", "SQL argument 2 holds 2 statements"),
        ("SELECT 1 AS a;; -- done\n; SELECT 2 AS b; SELECT 3", "SQL argument 2 holds 3 statements"),
        ("  -- just a comment", "SQL argument 2 holds no statement"),
        ("", "SQL argument 2 holds no statement"),
    ],
)
def test_arguments_with_several_statements_or_none_are_refused_before_reading(
    engine, sql, message, stream_bytes
):
    stdin = io.BufferedReader(io.BytesIO(stream_bytes))
    out, err = io.BytesIO(), io.StringIO()
    status = main(
        ["query", "-", "SELECT 1", sql, "-e", engine], stdin=stdin, stdout=out, stderr=err
    )
    assert status == 2
    assert err.getvalue().startswith(f"batchcorder: error: {message}: give each statement") or (
        err.getvalue() == f"batchcorder: error: {message}\n"
    )
    assert out.getvalue() == b""
    assert stdin.tell() == 0  # refused before the source was read


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a;b' AS s -- a comment; not a statement\n;",
        "SELECT $$a;b$$ AS s",
        "SELECT 'a;b' AS s /* a /* nested; */ comment; */",
    ],
)
def test_a_semicolon_inside_quotes_or_comments_is_one_statement(command, stream_bytes, engine, sql):
    result = command("query", "-", sql, "-e", engine, "-f", "json", stdin=stream_bytes)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"s": "a;b"}


def test_polars_views_are_lazy_frames(command, stream_bytes):
    result = command(
        "query", "-",
        '/* a view */ CREATE VIEW "my view" AS SELECT id FROM src WHERE id < 3',
        'CREATE VIEW IF NOT EXISTS "my view" AS SELECT 1 AS id',
        'SELECT count(*) AS n FROM "my view"',
        "-e", "polars", "-f", "csv",
        stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b'"n"\n3\n'


def test_polars_errors_are_short(command, stream_bytes):
    view_twice = command(
        "query", "-", "CREATE VIEW v AS SELECT 1 AS x", "CREATE VIEW v AS SELECT 2 AS x",
        "-e", "polars", stdin=stream_bytes,
    )  # fmt: skip
    assert view_twice.returncode == 2
    assert view_twice.stderr == (
        "batchcorder: error: SQL statement 2 failed in polars: relation 'v' already exists\n"
    )
    insert = command("query", "-", "INSERT INTO src VALUES (1)", "-e", "polars", stdin=stream_bytes)
    assert insert.returncode == 2
    assert insert.stderr == (
        "batchcorder: error: SQL statement 1 failed in polars: "
        "statement type is not supported: Insert\n"
    )


def test_duckdb_returning_is_a_result(command, stream_bytes):
    result = command(
        "query", "-",
        "CREATE TABLE t (id BIGINT)",
        'INSERT INTO t VALUES (7) RETURNING id AS "Count"',
        "-f", "json",
        stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"Count": 7}


@functools.cache
def _duckdb() -> object:
    import duckdb

    return duckdb.connect()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["SELECT", " ", "1", "'a;b'", "'it''s'", '"x;y"', "-- c;\n", "/* ; */"]),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 4),
)
def test_split_statements_agrees_with_duckdb(pieces, copies):
    """An internal part: the splitter Polars and DataFusion use agrees with DuckDB's parser.

    Dollar quotes, backslash escapes and nested comments are left out: the
    splitter does not know them (DuckDB's parser counts those where installed).
    """
    import duckdb

    statement = "SELECT " + "".join(pieces)
    sql = ";".join([statement] * copies)
    try:
        expected = len(_duckdb().extract_statements(sql))
    except duckdb.Error:
        return  # not SQL: nothing to agree on
    assert len(split_statements(sql)) == expected
    assert all(first_keyword(part) == "SELECT" for part in split_statements(sql))


def test_duckdb_returning_after_non_ascii_text_is_a_result(command, stream_bytes):
    # DuckDB's tokenizer gives offsets in UTF-8 bytes, not characters.
    result = command(
        "query", "-",
        "CREATE TABLE t (a VARCHAR)",
        "INSERT INTO t VALUES ('é') RETURNING a",
        "INSERT INTO t VALUES ('ééé') RETURNING a || 'x' AS b",
        "-f", "json",
        stdin=stream_bytes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines() if line] == [
        {"a": "é"},
        {"b": "éééx"},
    ]
