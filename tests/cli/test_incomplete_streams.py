"""Arrow IPC streams that end without their end-of-stream marker are refused, not shortened.

A producer that dies half-way leaves a stream that pyarrow's reader takes for
a complete, shorter one. ``batchcorder query`` must fail instead, on standard
input and on an ``.arrows`` file, and every reader of the cache must see it.
The readers of the cache are an internal part: those tests open the source
with ``open_source``.

Internal parts under test: ``batchcorder._cli.errors``, ``batchcorder._cli.sources``.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchcorder import StreamCache
from batchcorder._cli.errors import CLIError
from batchcorder._cli.sources import IncompleteStreamError, open_source

#: Seconds a command may take.
TIMEOUT = 120

#: Writes ``total`` batches of 1000 rows to standard output, or to the file
#: ``argv[3]``, and dies (``os._exit(1)``, no end-of-stream marker) before
#: batch ``die_at``.
PRODUCER = """
import os, sys
import pyarrow as pa
total, die_at = int(sys.argv[1]), int(sys.argv[2])
out = open(sys.argv[3], "wb") if len(sys.argv) > 3 else sys.stdout.buffer
schema = pa.schema({"id": pa.int64()})
writer = pa.ipc.new_stream(out, schema)
for index in range(total):
    if index == die_at:
        out.flush()
        os._exit(1)
    writer.write_batch(pa.record_batch([pa.array(range(index * 1000, (index + 1) * 1000))], schema=schema))
writer.close()
out.flush()
"""


def _producer(total: int, die_at: int, path: Path | None = None) -> list[str]:
    return [sys.executable, "-c", PRODUCER, str(total), str(die_at), *([str(path)] if path else [])]


def _query(source: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchcorder", "query", source, "SELECT count(*) FROM src"],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _assert_refused(result: subprocess.CompletedProcess[str], label: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "50000" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert label in lines[0]
    assert "ended after 50 batches without its end-of-stream marker" in lines[0]


def test_query_refuses_a_producer_that_died_on_stdin() -> None:
    producer = subprocess.Popen(_producer(100, 50), stdout=subprocess.PIPE)
    try:
        result = _query("-", stdin=producer.stdout.fileno())  # type: ignore[union-attr]
    finally:
        producer.stdout.close()  # type: ignore[union-attr]
        producer.wait(TIMEOUT)
    assert producer.returncode == 1
    _assert_refused(result, "standard input")


def test_query_refuses_a_file_its_producer_left_unfinished(tmp_path: Path) -> None:
    path = tmp_path / "cut.arrows"
    assert subprocess.run(_producer(100, 50, path), timeout=TIMEOUT, check=False).returncode == 1
    _assert_refused(_query(str(path)), repr(str(path)))


@pytest.mark.parametrize("via_file", [False, True])
def test_query_reads_a_finished_stream_whole(tmp_path: Path, via_file: bool) -> None:
    path = tmp_path / "whole.arrows"
    subprocess.run(_producer(100, 100, path), timeout=TIMEOUT, check=True)
    if via_file:
        result = _query(str(path))
    else:
        with path.open("rb") as stdin:
            result = _query("-", stdin=stdin.fileno())
    assert result.returncode == 0, result.stderr
    assert "100000" in result.stdout


# -- the check itself --------------------------------------------------------


def _stream(batches: list[pa.RecordBatch], **options: object) -> bytes:
    sink = io.BytesIO()
    write_options = pa.ipc.IpcWriteOptions(**options)  # type: ignore[arg-type]
    with pa.ipc.new_stream(sink, batches[0].schema, options=write_options) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


def _end_marker_lookalike() -> list[pa.RecordBatch]:
    """Batches whose IPC bodies end with the very bytes of an end-of-stream marker."""
    column = pa.array([1, 2, 0xFFFFFFFF, 0], pa.uint32())
    return [pa.record_batch({"u": column})] * 3


def _every_reader_fails(data: bytes, label: str) -> None:
    source = open_source("-", io.BufferedReader(io.BytesIO(data)))
    cache = StreamCache(source.reader)
    for _ in range(3):
        with pytest.raises(IncompleteStreamError, match=f"on {label} ended after 3 batches"):
            cache.reader().read_all()
    with pytest.raises(IncompleteStreamError):
        cache.ingest_all()
    assert cache.stats.ingested_batches == 3
    cache.close()


def test_a_body_ending_like_the_marker_does_not_pass_for_it() -> None:
    whole = _stream(_end_marker_lookalike())
    assert whole[-16:-8] == b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the last body's bytes
    _every_reader_fails(whole[:-8], "standard input")


def test_a_legacy_end_marker_ends_the_stream() -> None:
    batches = _end_marker_lookalike()
    whole = _stream(batches, use_legacy_format=True)
    assert whole.endswith(b"\x00\x00\x00\x00")
    source = open_source("-", io.BufferedReader(io.BytesIO(whole)))
    assert StreamCache(source.reader).reader().read_all().equals(pa.Table.from_batches(batches))
    _every_reader_fails(whole[:-4], "standard input")


def test_an_empty_finished_stream_is_whole() -> None:
    schema = pa.schema({"x": pa.int64()})
    sink = io.BytesIO()
    pa.ipc.new_stream(sink, schema).close()
    source = open_source("-", io.BufferedReader(io.BytesIO(sink.getvalue())))
    assert StreamCache(source.reader).reader().read_all().num_rows == 0


def test_a_stream_cut_inside_a_message_says_so() -> None:
    whole = _stream(_end_marker_lookalike())
    source = open_source("-", io.BufferedReader(io.BytesIO(whole[:-20])))
    with pytest.raises((pa.ArrowInvalid, OSError), match="Expected to"):
        StreamCache(source.reader).ingest_all()


def test_a_truncated_schema_is_a_command_error() -> None:
    whole = _stream(_end_marker_lookalike())
    with pytest.raises(CLIError, match="not an Arrow IPC stream"):
        open_source("-", io.BufferedReader(io.BytesIO(whole[:6])))


# -- any cut, anywhere --------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[pa.RecordBatch], bytes, bool]:
    """Batches of uint32 values (end-marker bytes likely), written in either format."""
    values = st.sampled_from([0, 1, 0xFFFFFFFF, 0xFFFFFF00, 7])
    batches = [
        pa.record_batch({"u": pa.array(draw(st.lists(values, max_size=6)), pa.uint32())})
        for _ in range(draw(st.integers(1, 4)))
    ]
    legacy = draw(st.booleans())
    return batches, _stream(batches, use_legacy_format=legacy), legacy


@settings(max_examples=60, deadline=None)
@given(stream=streams(), data=st.data())
def test_a_stream_cut_anywhere_never_reads_as_a_whole(
    stream: tuple[list[pa.RecordBatch], bytes, bool], data: st.DataObject
) -> None:
    batches, whole, _ = stream
    expected = pa.Table.from_batches(batches)
    source = open_source("-", io.BufferedReader(io.BytesIO(whole)))
    assert StreamCache(source.reader).reader().read_all().equals(expected)
    cut = data.draw(st.integers(8, len(whole) - 1), label="cut")
    try:
        source = open_source("-", io.BufferedReader(io.BytesIO(whole[:cut])))
    except CLIError:
        return  # the schema itself was cut
    cache = StreamCache(source.reader)
    with pytest.raises((IncompleteStreamError, pa.ArrowInvalid, OSError)):
        cache.reader().read_all()
