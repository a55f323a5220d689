"""In-process tests of the command line's small parts: sizes, kinds, output, progress."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import itertools
import json

import pyarrow as pa
import pytest

from batchcorder._cli.errors import one_line
from batchcorder._cli.output import ResultWriter, format_table
from batchcorder._cli.progress import ingest_progress
from batchcorder._cli.render import text_column
from batchcorder._cli.sizes import format_size, parse_size
from batchcorder._cli.sources import detect_kind


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1", 1),
        ("512MB", 512_000_000),
        ("512 mb", 512_000_000),
        ("2GiB", 2 * 1024**3),
        ("2G", 2 * 1024**3),
        ("1.5KiB", 1536),
        ("10kb", 10_000),
        ("3TB", 3 * 1000**4),
        ("100B", 100),
    ],
)
def test_parse_size(text: str, size: int):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "12XB", "-1GB", "1.2.3MB", "0", "0.1B", "ten"])
def test_parse_size_rejects(text: str):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_format_size_round_trips_binary_units():
    assert format_size(parse_size("3MiB")) == "3.0 MiB"
    assert format_size(1023) == "1023 B"


@pytest.mark.parametrize(
    ("head", "name", "kind"),
    [
        (b"PAR1xxxx", "a.csv", "parquet"),  # magic bytes win over the name
        (b"ARROW1\x00\x00", "a.feather", "arrow-file"),
        (b"\xff\xff\xff\xff\x78\x00", "a", "arrow-stream"),
        (b"a,b\n", "A.CSV", "csv"),
        (b"\x1f\x8b\x08", "a.tsv.gz", "tsv"),
        (b"{}", "a.json", None),
        (b"", "a", None),
    ],
)
def test_detect_kind(head: bytes, name: str, kind: str | None):
    assert detect_kind(head, name) == kind


def test_table_format_edge_cases():
    table = pa.table(
        {
            "text": ["line\nbreak", "x" * 60],
            "flag": [True, None],
            "items": [[1, 2], []],
        }
    )
    lines = format_table(table).splitlines()
    assert lines[2].startswith("line\\nbreak")
    assert "true" in lines[2] and "[1, 2]" in lines[2]
    assert "x" * 47 + "…" in lines[3] and "NULL" in lines[3]
    assert format_table(table.slice(0, 0)).splitlines()[-1] == "(0 rows)"


def test_arrow_writer_separates_nothing_and_text_writers_one_blank_line():
    out = io.BytesIO()
    writer = ResultWriter("arrow", out)
    writer.write(pa.table({"a": [1]}).to_reader())
    writer.write(pa.table({"b": ["x", "y"]}).to_reader())
    source = pa.BufferReader(out.getvalue())
    assert pa.ipc.open_stream(source).read_all().column_names == ["a"]
    assert pa.ipc.open_stream(source).read_all().num_rows == 2

    out = io.BytesIO()
    writer = ResultWriter("json", out)
    writer.write(pa.table({"a": pa.array([], pa.int64())}).to_reader())  # no rows
    writer.write(pa.table({"a": [1]}).to_reader())
    assert out.getvalue() == b'\n{"a": 1}\n'


def test_json_of_nested_and_binary_values():
    out = io.BytesIO()
    table = pa.table({"s": [{"k": 1.5, "l": [None, "z"]}], "b": [b"\x00\xff"]})
    ResultWriter("json", out).write(table.to_reader())
    assert json.loads(out.getvalue()) == {"s": {"k": 1.5, "l": [None, "z"]}, "b": "AP8="}


def test_csv_writes_nested_values_as_json_text():
    table = pa.table(
        {
            "l": [[1, 2], None, []],
            "s": [{"d": datetime.date(2024, 1, 2), "k": 1.5}, {"d": None, "k": None}, None],
            "m": pa.array([[("a", 1)], [], None], pa.map_(pa.string(), pa.int64())),
            "b": [b"\x00\xff", None, b""],
        }
    )
    out = io.BytesIO()
    ResultWriter("csv", out).write(table.to_reader())
    rows = list(csv.reader(io.StringIO(out.getvalue().decode())))
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
        assert result.stdout.decode().splitlines()[2].split() == [
            "PT5S",
            "P1DT3H4M5.5S",
            "-PT1H30M",
        ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.timedelta(0), "PT0S"),
        (datetime.timedelta(days=400, microseconds=1), "P400DT0.000001S"),
        (datetime.timedelta(hours=-1), "-PT1H"),
        (pa.MonthDayNano([14, 3, 0]), "P1Y2M3D"),
        (pa.MonthDayNano([-1, -2, -3_000_000_000]), "-P1M2DT3S"),
        (pa.MonthDayNano([1, -1, 0]), "P1M-1D"),
    ],
)
def test_iso_durations(value, text):
    assert text_column(pa.array([value, None])).to_pylist() == [text, None]


def test_every_type_has_one_text():
    table = pa.table(
        {
            "i": pa.array([1, None], pa.int8()),
            "f": [0.1, float("nan")],
            "dec": pa.array([decimal.Decimal("1.10"), None], pa.decimal128(5, 2)),
            "ts": pa.array(
                [datetime.datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("ms", "UTC")
            ),
            "t": pa.array([datetime.time(1, 2, 3), None]),
            "bool": [True, False],
            "dict": pa.array(["x", None]).dictionary_encode(),
            "view": pa.array(["v", ""], pa.string_view()),
            "u": pa.ExtensionArray.from_storage(
                pa.uuid(), pa.array([bytes(range(16)), None], pa.binary(16))
            ),
        }
    )
    texts = {
        name: text_column(column).to_pylist()
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    assert texts == {
        "i": ["1", None],
        "f": ["0.1", "nan"],
        "dec": ["1.10", None],
        "ts": ["2024-01-02 03:04:05.000Z", None],
        "t": ["01:02:03.000000", None],
        "bool": ["true", "false"],
        "dict": ["x", None],
        "view": ["v", ""],
        "u": ["00010203-0405-0607-0809-0a0b0c0d0e0f", None],
    }


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


def test_one_line_keeps_the_first_paragraph():
    message = "Schema error: No field named nope.\nValid fields are src.a.\n\nplan..."
    assert one_line(message) == "Schema error: No field named nope. Valid fields are src.a."


def every_type() -> pa.Table:
    return pa.table(
        {
            "null": pa.array([None, None], pa.null()),
            "u64": pa.array([2**64 - 1, 0], pa.uint64()),
            "view": pa.array(["a", None], pa.string_view()),
            "large": pa.array(["x", "y"], pa.large_string()),
            "dict": pa.array(["p", None]).dictionary_encode(),
            "dec": pa.array([decimal.Decimal("1.5"), None], pa.decimal256(40, 2)),
            "time": pa.array([datetime.time(1, 2), None]),
            "date64": pa.array([datetime.date(2020, 1, 1), None], pa.date64()),
            "ts": pa.array([0, None], pa.timestamp("ns", "Asia/Tokyo")),
            "ree": pa.RunEndEncodedArray.from_arrays([2], ["r"]),
            "fixed": pa.array([b"ab", None], pa.binary(2)),
            "bview": pa.array([b"x", None], pa.binary_view()),
            "dur": pa.array([datetime.timedelta(minutes=-90), None]),
            "fsl": pa.array([[1, 2], None], pa.list_(pa.int8(), 2)),
            "struct": pa.array([{"t": datetime.datetime(2024, 1, 1)}, None]),
        }
    )


def test_table_and_csv_print_every_type_alike():
    table = every_type()
    text, out = io.BytesIO(), io.BytesIO()
    ResultWriter("table", text).write(table.to_reader())
    ResultWriter("csv", out).write(table.to_reader())
    header, *rows = list(csv.reader(io.StringIO(out.getvalue().decode())))
    assert header == table.column_names
    lines = text.getvalue().decode().splitlines()
    starts = [lines[0].index(name) for name in header] + [None]
    for line, row in zip(lines[2:4], rows, strict=True):
        cells = [line[a:b].strip() for a, b in itertools.pairwise(starts)]
        assert [cell if cell != "NULL" else "" for cell in cells] == row
    assert rows[0][header.index("dur")] == "-PT1H30M"
    assert rows[0][header.index("ts")] == "1970-01-01 09:00:00.000000000+0900"
    assert rows[0][header.index("struct")] == '{"t": "2024-01-01T00:00:00.000000"}'


def test_json_writes_every_type():
    out = io.BytesIO()
    ResultWriter("json", out).write(every_type().to_reader())
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {
        "null": None,
        "u64": 2**64 - 1,
        "view": "a",
        "large": "x",
        "dict": "p",
        "dec": 1.5,
        "time": "01:02:00.000000",
        "date64": "2020-01-01",
        "ts": "1970-01-01T09:00:00.000000000+09:00",
        "ree": "r",
        "fixed": "YWI=",
        "bview": "eA==",
        "dur": "-PT1H30M",
        "fsl": [1, 2],
        "struct": {"t": "2024-01-01T00:00:00.000000"},
    }
    assert second["ree"] == "r" and second["view"] is None
