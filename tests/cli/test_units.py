"""In-process tests of the command line's small parts: sizes, kinds, output, progress."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pytest

from batchcorder._cli.errors import one_line
from batchcorder._cli.output import ResultWriter, format_table
from batchcorder._cli.progress import ingest_progress
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


def test_csv_writer_rejects_nested_values_with_one_line():
    from batchcorder._cli.errors import CLIError

    table = pa.table({"l": [[1, 2]]})
    with pytest.raises(CLIError, match="cannot write the result as csv"):
        ResultWriter("csv", io.BytesIO()).write(table.to_reader())


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
