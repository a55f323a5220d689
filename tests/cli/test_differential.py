"""The command line against the engines: every format read back equals the engine's own result.

For generated data (ints with nulls, any floats, unicode strings with empty
ones, dates, timestamps with and without a zone, booleans), ``batchcorder
query`` runs in-process through ``main`` with each engine and each
``--format``; what it wrote is read back and compared with the same query
computed by the engine itself, in Python, over the same ``pa.Table``.
A stream cut at any byte either answers for the batches before the cut (a cut
between messages is a shorter stream) or fails naming its input.

Internal parts under test: ``batchcorder._engines``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchcorder._cli.main import main
from batchcorder._engines import SQL_ENGINES

ENGINES = SQL_ENGINES
FORMATS = ("table", "csv", "json", "arrow")

#: The command's statements: a view, which writes nothing, then two queries.
STATEMENTS = (
    "CREATE VIEW v AS SELECT * FROM src WHERE id % 2 = 0",
    "SELECT * FROM v ORDER BY id",
    "SELECT * FROM src ORDER BY id",
)
#: What the engine itself is asked, one per result the command writes.
NATIVE = (
    "SELECT * FROM src WHERE id % 2 = 0 ORDER BY id",
    "SELECT * FROM src ORDER BY id",
)

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("i", pa.int64()),
        ("f", pa.float64()),
        ("s", pa.string()),
        ("d", pa.date32()),
        ("t", pa.timestamp("us")),
        ("tz", pa.timestamp("us", tz="UTC")),
        ("b", pa.bool_()),
    ]
)

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_moment = st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2250, 1, 1))


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 12))

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(st.none() | values, min_size=rows, max_size=rows))

    return pa.table(
        [
            list(range(rows)),
            column(st.integers(-(2**63), 2**63 - 1)),
            column(st.floats()),
            column(_text),
            column(st.dates(min_value=dt.date(1, 1, 1))),
            column(_moment),
            [None if v is None else v.replace(tzinfo=dt.timezone.utc) for v in column(_moment)],
            column(st.booleans()),
        ],
        schema=SCHEMA,
    )


def native(engine: str, table: pa.Table, sql: str) -> pa.Table:
    """The engine's own answer, without batchcorder."""
    if engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        connection.register("src", table)
        return connection.sql(sql).to_arrow_table()
    if engine == "polars":
        import polars as pl

        return pl.SQLContext(src=pl.from_arrow(table)).execute(sql, eager=True).to_arrow()
    import datafusion

    context = datafusion.SessionContext()
    context.from_arrow(table, name="src")
    return context.sql(sql).to_arrow_table()


def run(engine: str, fmt: str, table: pa.Table, statements: tuple[str, ...]) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=5)
    stdin = io.BufferedReader(io.BytesIO(sink.getvalue().to_pybytes()))
    out, err = io.BytesIO(), io.StringIO()
    args = ["query", "-", *statements, "-e", engine, "-f", fmt, "--max-rows", "0"]
    assert main(args, stdin=stdin, stdout=out, stderr=err) == 0, err.getvalue()
    assert err.getvalue() == ""
    return out.getvalue()


# -- comparing -------------------------------------------------------------


def normalized(value: Any) -> Any:
    """NaN equals NaN; a zoned datetime compares as UTC."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc)
    return value


def rows_of(table: pa.Table) -> list[list[Any]]:
    return [[normalized(v) for v in row.values()] for row in table.to_pylist()]


def assert_same_rows(actual: list[list[Any]], expected: pa.Table) -> None:
    assert actual == rows_of(expected)


def json_blocks(text: str) -> list[str]:
    """JSON lines results: an empty line ends one (a result without rows has no lines)."""
    results: list[list[str]] = [[]]
    # only "\n" ends a line: a JSON string may hold U+2028 or U+0085, which splitlines splits at
    for line in text.split("\n")[:-1]:
        if line:
            results[-1].append(line)
        else:
            results.append([])
    return ["".join(f"{line}\n" for line in lines) for lines in results]


def blocks(text: str, quote: str | None = None) -> list[str]:
    """Results separated by one empty line; with ``quote``, not inside quoted values."""
    parts, start, inside = [], 0, False
    index = 0
    while index < len(text):
        if quote is not None and text[index] == quote:
            inside = not inside
        elif not inside and text.startswith("\n\n", index):
            parts.append(text[start : index + 1])
            start = index + 2
            index += 1
        index += 1
    parts.append(text[start:])
    return parts


def from_strings(values: list[str | None], kind: pa.DataType) -> list[Any]:
    """Parse text back into Python values of ``kind`` with pyarrow's own parsers."""
    return pc.cast(pa.array(values, pa.string()), kind).to_pylist()


def read_arrow(data: bytes) -> list[list[list[Any]]]:
    source, results = pa.BufferReader(data), []
    while source.tell() < len(data):
        results.append(rows_of(pa.ipc.open_stream(source).read_all()))
    return results


def read_csv(block: str, schema: pa.Schema) -> list[list[Any]]:
    kinds = {field.name: _parsable(field.type) for field in schema}
    table = pa_csv.read_csv(
        io.BytesIO(block.encode()),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=kinds,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return rows_of(table)


def read_json(block: str, schema: pa.Schema) -> list[list[Any]]:
    objects = [json.loads(line) for line in block.split("\n")[:-1]]
    assert all(list(obj) == schema.names for obj in objects)
    columns = []
    for field in schema:
        values = [obj[field.name] for obj in objects]
        if pa.types.is_date(field.type) or pa.types.is_timestamp(field.type):
            values = from_strings(values, _parsable(field.type))
        columns.append(values)
    return [[normalized(v) for v in row] for row in zip(*columns, strict=True)] if columns else []


def read_table(block: str, schema: pa.Schema) -> list[list[str | None]]:
    """Cut the aligned table at its columns: a list of cells per row, None for NULL."""
    lines = block.rstrip("\n").split("\n")
    assert lines[-1].startswith("(") and lines[-1].endswith(")")
    dashes = lines[1]
    spans, start = [], 0
    for run_ in dashes.split("  "):
        spans.append((start, start + len(run_)))
        start += len(run_) + 2
    assert [lines[0][a:b].strip() for a, b in spans] == schema.names
    rows = []
    for line in lines[2:-1]:
        cells = [line[a:b].strip() if (a, b) != spans[-1] else line[a:].strip() for a, b in spans]
        rows.append([None if cell == "NULL" else cell for cell in cells])
    return rows


def _parsable(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
        return pa.string()
    return kind


def table_cell(value: Any, kind: pa.DataType) -> str | None:
    """What the table shows for a value: an independent statement of the rules."""
    if value is None:
        return None
    if pa.types.is_boolean(kind):
        return "true" if value else "false"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        text = value.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        text = (text if len(text) <= 48 else text[:47] + "…").strip()
        return None if text == "NULL" else text  # the table is for people: the string looks null
    return str(value)


def assert_table_matches(cells: list[list[str | None]], expected: pa.Table) -> None:
    assert len(cells) == expected.num_rows
    for index, (name, kind) in enumerate(
        zip(expected.column_names, expected.schema.types, strict=True)
    ):
        column = [row[index] for row in cells]
        values = expected.column(name).to_pylist()
        if pa.types.is_floating(kind):
            parsed = [None if c is None else float(c) for c in column]
        elif pa.types.is_integer(kind):
            parsed = [None if c is None else int(c) for c in column]
        elif pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            parsed = from_strings(column, kind)
        else:
            parsed = list(column)
            values = [table_cell(v, kind) for v in values]
        assert [normalized(v) for v in parsed] == [normalized(v) for v in values], name


# -- the tests -------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables())
def test_every_format_reads_back_as_the_engines_own_result(engine: str, table: pa.Table):
    expected = [native(engine, table, sql) for sql in NATIVE]
    for fmt in FORMATS:
        written = run(engine, fmt, table, STATEMENTS)
        if fmt == "arrow":
            assert read_arrow(written) == [rows_of(result) for result in expected]
            continue
        text = written.decode()
        parts = json_blocks(text) if fmt == "json" else blocks(text, '"' if fmt == "csv" else None)
        assert len(parts) == len(expected), fmt  # the view wrote nothing
        for part, result in zip(parts, expected, strict=True):
            if fmt == "csv":
                assert_same_rows(read_csv(part, result.schema), result)
            elif fmt == "json":
                nan_free = result.to_pylist()
                assert read_json(part, result.schema) == [
                    [
                        None if isinstance(v, float) and not math.isfinite(v) else normalized(v)
                        for v in row.values()
                    ]
                    for row in nan_free
                ]
            else:
                assert_table_matches(read_table(part, result.schema), result)


# -- truncated input ---------------------------------------------------------


def stream_with_boundaries(table: pa.Table) -> tuple[bytes, list[int]]:
    """``table`` as an IPC stream of 5-row batches, and the lengths of its whole prefixes:
    after the schema, after each batch, and the whole stream (end-of-stream marker)."""
    empty = pa.BufferOutputStream()
    pa.ipc.new_stream(empty, table.schema).close()
    # pyarrow writes the schema with the first batch or at the end: its length is that
    # of a stream of no batch without its 8-byte end-of-stream marker.
    boundaries = [len(empty.getvalue()) - 8]
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, table.schema)
    for batch in table.to_batches(max_chunksize=5):
        writer.write_batch(batch)
        boundaries.append(sink.tell())
    writer.close()
    data = sink.getvalue().to_pybytes()
    return data, [*boundaries, len(data)]


@pytest.mark.parametrize("engine", ENGINES)
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(table=tables(), data=st.data())
def test_a_cut_stream_fails_naming_its_input(
    engine: str, table: pa.Table, data: st.DataObject
) -> None:
    """A stream cut anywhere — between messages, in one, in the end-of-stream marker,
    before the schema — is a truncated input: the command fails naming its input and
    writes no result, never a result over part of the batches as if they were all.
    Only the whole stream, marker included, answers."""
    stream, boundaries = stream_with_boundaries(table)
    cut = data.draw(st.sampled_from(boundaries) | st.integers(0, len(stream)), label="bytes kept")
    out, err = io.BytesIO(), io.StringIO()
    stdin = io.BufferedReader(io.BytesIO(stream[:cut]))
    args = ["query", "-", "SELECT * FROM src ORDER BY id", "-e", engine, "-f", "arrow"]
    status = main(args, stdin=stdin, stdout=out, stderr=err)
    if cut == len(stream):
        assert status == 0, err.getvalue()
        expected = native(engine, table, "SELECT * FROM src ORDER BY id")
        assert read_arrow(out.getvalue()) == [rows_of(expected)]
    else:
        assert status != 0
        assert out.getvalue() == b""
        assert "standard input" in err.getvalue()
