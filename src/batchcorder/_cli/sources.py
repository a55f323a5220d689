"""Open the SOURCE argument as a ``pyarrow.RecordBatchReader`` that reads nothing up front."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from batchcorder._cli.arguments import BATCH_ROWS
from batchcorder._cli.errors import CLIError, one_line, os_reason

__all__ = ["IncompleteStreamError", "Source", "detect_kind", "open_source"]

_MAGIC = {b"PAR1": "parquet", b"ARROW1": "arrow-file", b"\xff\xff\xff\xff": "arrow-stream"}


class IncompleteStreamError(ValueError):
    """An Arrow IPC stream that ended without its end-of-stream marker.

    pyarrow takes an end of file between two messages for the end of the
    stream: a producer that died half-way would look like a shorter, complete
    stream. Every reader of the cache gets this error instead.

    Examples
    --------
    >>> str(IncompleteStreamError("standard input", 50))
    'the Arrow IPC stream on standard input ended after 50 batches without its end-of-stream marker: the producer stopped before finishing it'
    """

    def __init__(self, label: str, batches: int) -> None:
        super().__init__(
            f"the Arrow IPC stream on {label} ended after {batches:,} batches without its "
            "end-of-stream marker: the producer stopped before finishing it"
        )


class _EndTrackingFile:
    """A buffered binary file that remembers whether its last read came up short.

    pyarrow reads a stream message by message, asking for exactly the bytes it
    needs: the end-of-stream marker is a full read (of 8 bytes, or 4 in the
    legacy format), a stream cut between two messages ends with a short read.
    The bytes themselves are not looked at (a body can end like the marker).
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.ended_short = False

    def __getattr__(self, name: str) -> Any:  # closed, readable, close: the file's own
        return getattr(self._raw, name)

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)  # a buffered read: short only at the end
        self.ended_short = size < 0 or len(data) < size
        return data


def _open_complete_stream(raw: BinaryIO, label: str) -> Source:
    """An Arrow IPC stream over ``raw`` that must end with its end-of-stream marker."""
    file = _EndTrackingFile(raw)
    stream = pa.ipc.open_stream(file)

    def batches() -> Iterator[pa.RecordBatch]:
        count = 0
        for batch in stream:
            count += 1
            yield batch
        if file.ended_short:
            raise IncompleteStreamError(label, count)

    reader = pa.RecordBatchReader.from_batches(stream.schema, batches())
    return Source(reader, label, _closers=[file.close, stream.close, reader.close])


@dataclass
class Source:
    """An opened SOURCE: its ``reader``, ``label`` for messages, ``total_rows`` if known."""

    reader: pa.RecordBatchReader
    label: str
    total_rows: int | None = None
    _closers: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close the reader and any file behind it. Idempotent."""
        while self._closers:
            self._closers.pop()()


def detect_kind(head: bytes, name: str) -> str | None:
    """A source's kind from its magic bytes, else its name (``.csv``, ``.tsv``, compressed).

    Examples
    --------
    >>> detect_kind(b"PAR1\x15\x04", "data.bin"), detect_kind(b"id,name", "events.csv.gz")
    ('parquet', 'csv')
    >>> detect_kind(b"hello", "notes.txt") is None
    True
    """
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    suffixes = [suffix.lower() for suffix in Path(name).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zst", ".lz4"):
        suffixes.pop()
    return suffixes[-1][1:] if suffixes and suffixes[-1] in (".csv", ".tsv") else None


def open_source(spec: str, stdin: BinaryIO | None = None) -> Source:
    """Open SOURCE, a path or ``-`` (an Arrow IPC stream on ``stdin``); close it when done.

    Examples
    --------
    >>> open_source("no/such/file.parquet")
    Traceback (most recent call last):
    ...
    batchcorder._cli.errors.CLIError: cannot read 'no/such/file.parquet': No such file or directory
    """
    if spec == "-":
        return _open_stdin(sys.stdin.buffer if stdin is None else stdin)
    path = Path(spec)
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except OSError as error:
        reason = "it is a directory" if error.errno == errno.EISDIR else os_reason(error)
        raise CLIError(f"cannot read {spec!r}: {reason}") from error
    kind = detect_kind(head, path.name)
    if kind is None:
        what = "it is empty" if not head else "expected Parquet, Arrow IPC, .csv or .tsv"
        raise CLIError(f"unknown file type: {spec!r} ({what})")
    closers: list[Callable[[], object]] = []
    try:
        return _open_file(kind, path, repr(spec), closers)
    except (OSError, pa.ArrowException) as error:
        for close in reversed(closers):
            close()
        raise CLIError(f"cannot read {spec!r} as {kind}: {one_line(error)}") from error


def _open_stdin(stdin: BinaryIO) -> Source:
    if stdin.isatty():
        raise CLIError(
            "standard input is a terminal: pipe an Arrow IPC stream into it, "
            "or give a file as SOURCE"
        )
    peek = getattr(stdin, "peek", None)
    kind = detect_kind(peek(8)[:8] if peek is not None else b"", "")
    if kind in ("parquet", "arrow-file"):
        what = "a Parquet file" if kind == "parquet" else "an Arrow IPC file"
        raise CLIError(
            f"standard input holds {what}, not an Arrow IPC stream: give its path as SOURCE"
        )
    try:
        return _open_complete_stream(stdin, "standard input")
    except pa.ArrowException as error:
        message = one_line(error)
        if "null or length 0" in message:
            message = "the input is empty"
        raise CLIError(f"standard input is not an Arrow IPC stream: {message}") from error


def _open_file(kind: str, path: Path, label: str, closers: list[Callable[[], object]]) -> Source:
    """Open ``path`` as ``kind``; what is opened is closed by ``closers``, also if this fails."""
    if kind == "arrow-stream":
        file = path.open("rb")
        closers.append(file.close)
        return _open_complete_stream(file, label)
    if kind == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        closers.append(parquet.close)
        batches: Iterator[pa.RecordBatch] = parquet.iter_batches(batch_size=BATCH_ROWS)
        reader = pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches)
        return Source(reader, label, parquet.metadata.num_rows, [*closers, reader.close])
    if kind == "arrow-file":
        mapped = pa.memory_map(os.fspath(path))
        closers.append(mapped.close)
        ipc = pa.ipc.open_file(mapped)
        batches = (ipc.get_batch(index) for index in range(ipc.num_record_batches))
        reader = pa.RecordBatchReader.from_batches(ipc.schema, batches)
        return Source(reader, label, None, [*closers, reader.close])
    import pyarrow.csv as pa_csv

    stream = pa.input_stream(os.fspath(path), compression="detect")
    closers.append(stream.close)
    delimiter = "\t" if kind == "tsv" else ","
    reader = pa_csv.open_csv(stream, parse_options=pa_csv.ParseOptions(delimiter=delimiter))
    return Source(reader, label, None, [*closers, reader.close])
