"""The command's output rules, through the command: sizes, file kinds, formats, the progress bar.

The progress-bar test is about an internal part (the bar needs a terminal,
which the command's streams here are not) and imports it.

Internal parts under test: ``batchcorder._cli.output``, ``batchcorder._cli.progress``.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import itertools
import json

import pyarrow as pa
import pytest

from batchcorder._cli.progress import ingest_progress


@pytest.mark.parametrize("text", ["512MB", "512 mb", "2GiB", "2G", "1.5KiB", "10kb", "3TB", "1"])
def test_sizes_are_accepted(command, to_stream, text):
    result = command("query", "-", "SELECT 1 AS x", "--memory-capacity", text, "-f", "csv",
                     stdin=to_stream(pa.table({"x": [1]})))  # fmt: skip
    assert (result.returncode, result.stdout) == (0, b'"x"\n1\n'), result.stderr


@pytest.mark.parametrize("text", ["", "MB", "12XB", "-1GB", "1.2.3MB", "0", "0.1B", "ten"])
def test_bad_sizes_are_refused(command, text):
    result = command("query", "x.parquet", "SELECT 1", f"--disk-capacity={text}")
    assert result.returncode == 2
    assert "invalid size" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [
        ("a.csv", b"PAR1xxxx", "parquet"),  # magic bytes win over the name
        ("a.feather", b"ARROW1\x00\x00", "arrow-file"),
        ("notes.txt", b"hello", None),
        ("empty", b"", None),
    ],
)
def test_file_kinds(command, tmp_path, name, head, kind):
    path = tmp_path / name
    path.write_bytes(head)
    result = command("query", path, "SELECT 1")
    assert result.returncode == 2
    if kind is None:
        assert "unknown file type" in result.stderr
    else:
        assert f"as {kind}:" in result.stderr


def show(command, to_stream, table: pa.Table, fmt: str, sql: str = "SELECT * FROM src") -> str:
    result = command("query", "-", sql, "-f", fmt, stdin=to_stream(table))
    assert result.returncode == 0, result.stderr
    return result.text


def test_table_format_edge_cases(command, to_stream):
    table = pa.table(
        {"text": ["line\nbreak", "x" * 60], "flag": [True, None], "items": [[1, 2], []]}
    )
    lines = show(command, to_stream, table, "table").splitlines()
    assert lines[2].startswith("line\\nbreak")
    assert "true" in lines[2] and "[1, 2]" in lines[2]
    assert "x" * 47 + "…" in lines[3] and "NULL" in lines[3]
    assert lines[-1] == "(2 rows)"
    assert show(command, to_stream, table, "table", "SELECT * FROM src LIMIT 0").endswith(
        "(0 rows)\n"
    )


def test_empty_results_and_separators(command, to_stream):
    table = pa.table({"a": [1]})
    sql = ("SELECT * FROM src WHERE a > 1", "SELECT * FROM src")
    result = command("query", "-", *sql, "-f", "json", stdin=to_stream(table))
    assert result.stdout == b'\n{"a": 1}\n'
    result = command("query", "-", *sql, "-f", "csv", stdin=to_stream(table))
    assert result.stdout == b'"a"\n\n"a"\n1\n'


def test_csv_writes_nested_and_binary_values_as_text(command, to_stream):
    table = pa.table(
        {
            "l": [[1, 2], None, []],
            "s": [{"d": datetime.date(2024, 1, 2), "k": 1.5}, {"d": None, "k": None}, None],
            "m": pa.array([[("a", 1)], [], None], pa.map_(pa.string(), pa.int64())),
            "b": [b"\x00\xff", None, b""],
        }
    )
    rows = list(csv.reader(io.StringIO(show(command, to_stream, table, "csv"))))
    assert rows == [
        ["l", "s", "m", "b"],
        ["[1, 2]", '{"d": "2024-01-02", "k": 1.5}', '{"a": 1}', "0x00ff"],
        ["", '{"d": null, "k": null}', "{}", ""],
        ["[]", "", "", "0x"],
    ]


#: The same durations as each engine computes them: DuckDB an interval, the others a duration.
DURATIONS = {
    "duckdb": "SELECT INTERVAL 5 SECOND AS d, TIMESTAMP '2024-01-02 03:04:05.5' - "
    "TIMESTAMP '2024-01-01' AS diff, INTERVAL '-90 minutes' AS neg",
    "polars": "SELECT CAST('2024-01-01 00:00:05' AS TIMESTAMP) - CAST('2024-01-01' AS TIMESTAMP) "
    "AS d, CAST('2024-01-02 03:04:05.5' AS TIMESTAMP) - CAST('2024-01-01' AS TIMESTAMP) AS diff, "
    "CAST('2024-01-01' AS TIMESTAMP) - CAST('2024-01-01 01:30:00' AS TIMESTAMP) AS neg",
    "datafusion": "SELECT INTERVAL '5 seconds' AS d, CAST('2024-01-02 03:04:05.5' AS TIMESTAMP) - "
    "CAST('2024-01-01' AS TIMESTAMP) AS diff, INTERVAL '-90 minutes' AS neg",
}


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize("engine", sorted(DURATIONS))
def test_durations_print_the_same_from_every_engine(command, to_stream, engine, fmt):
    stdin = to_stream(pa.table({"x": [1]}))
    result = command("query", "-", DURATIONS[engine], "-e", engine, "-f", fmt, stdin=stdin)
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        assert json.loads(result.stdout) == {"d": "PT5S", "diff": "P1DT3H4M5.5S", "neg": "-PT1H30M"}
    elif fmt == "csv":
        assert result.stdout == b'"d","diff","neg"\n"PT5S","P1DT3H4M5.5S","-PT1H30M"\n'
    else:
        assert result.text.splitlines()[2].split() == ["PT5S", "P1DT3H4M5.5S", "-PT1H30M"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.timedelta(0), "PT0S"),
        (datetime.timedelta(days=400, microseconds=1), "P400DT0.000001S"),
        (datetime.timedelta(hours=-1), "-PT1H"),
        (datetime.timedelta(days=-1, hours=-12), "-P1DT12H"),
        (pa.MonthDayNano([14, 3, 0]), "P1Y2M3D"),
        (pa.MonthDayNano([-1, -2, -3_000_000_000]), "-P1M2DT3S"),
        (pa.MonthDayNano([1, -1, 0]), "P1M-1D"),
    ],
)
def test_iso_durations(command, to_stream, value, text):
    table = pa.table({"v": pa.array([value, None])})
    assert show(command, to_stream, table, "csv") == f'"v"\n"{text}"\n\n'


def every_type() -> pa.Table:
    return pa.table(
        {
            "null": pa.array([None, None], pa.null()),
            "u64": pa.array([2**64 - 1, 0], pa.uint64()),
            "view": pa.array(["a", None], pa.string_view()),
            "large": pa.array(["x", "y"], pa.large_string()),
            "dict": pa.array(["p", None]).dictionary_encode(),
            "dec": pa.array([decimal.Decimal("1.5"), None], pa.decimal128(20, 2)),
            "time": pa.array([datetime.time(1, 2), None]),
            "date": pa.array([datetime.date(2020, 1, 1), None]),
            "ts": pa.array([0, None], pa.timestamp("ns", "Asia/Tokyo")),
            "fixed": pa.array([b"ab", None], pa.binary(2)),
            "dur": pa.array([datetime.timedelta(minutes=-90), None]),
            "fsl": pa.array([[1, 2], None], pa.list_(pa.int8(), 2)),
            "struct": pa.array([{"t": datetime.datetime(2024, 1, 1)}, None]),
            "nan": [float("nan"), float("-inf")],
        }
    )


def test_table_and_csv_print_every_type_alike(command, to_stream):
    table = every_type()
    text = show(command, to_stream, table, "table")
    header, *rows = list(csv.reader(io.StringIO(show(command, to_stream, table, "csv"))))
    assert header == table.column_names
    lines = text.splitlines()
    starts = [lines[0].index(name) for name in header] + [None]
    for line, row in zip(lines[2:4], rows, strict=True):
        cells = [line[a:b].strip() for a, b in itertools.pairwise(starts)]
        assert [cell if cell != "NULL" else "" for cell in cells] == row
    first = dict(zip(header, rows[0], strict=True))
    assert first["dur"] == "-PT1H30M"
    assert first["ts"] == "1970-01-01T00:00:00Z"  # a zoned timestamp prints in UTC
    assert first["struct"] == '{"t": "2024-01-01T00:00:00"}'
    assert (first["time"], first["fixed"], first["dec"], first["nan"]) == (
        "01:02:00",
        "0x6162",
        "1.50",
        "nan",
    )


def test_json_writes_every_type(command, to_stream):
    first, second = map(json.loads, show(command, to_stream, every_type(), "json").splitlines())
    assert first == {
        "null": None,
        "u64": 2**64 - 1,
        "view": "a",
        "large": "x",
        "dict": "p",
        "dec": 1.5,
        "time": "01:02:00",
        "date": "2020-01-01",
        "ts": "1970-01-01T00:00:00Z",
        "fixed": "YWI=",
        "dur": "-PT1H30M",
        "fsl": [1, 2],
        "struct": {"t": "2024-01-01T00:00:00"},
        "nan": None,
    }
    assert second["view"] is None and second["nan"] is None


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_only():
    terminal = FakeTerminal()
    with ingest_progress(terminal, total_rows=1_000, delay=0) as progress:
        assert progress is not None
        progress(1, 500, 4096)
        progress(2, 1_000, 8192)
    drawn = terminal.getvalue()
    assert "ingesting" in drawn and "rows" in drawn
    assert drawn.endswith("\r")  # erased when done (leave=False)

    with ingest_progress(FakeTerminal(), enabled=False) as progress:
        assert progress is None
    with ingest_progress(io.StringIO()) as progress:
        assert progress is None


def test_list_views_print_their_values():
    """An internal part: no engine hands back a list view yet; pyarrow 26 casts one wrongly."""
    from batchcorder._cli.output import text_column

    views = pa.array([[1], [2, 3], None, [4]], pa.list_view(pa.int64())).slice(1)
    assert text_column(views).to_pylist() == ["[2, 3]", None, "[4]"]
