"""Open the SOURCE argument as a streaming ``pyarrow.RecordBatchReader``.

Every source streams: nothing is read before the cache asks for a batch, so
a Parquet file, a CSV file, an Arrow IPC file or stream, or standard input is
pulled batch by batch, exactly once.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

import pyarrow as pa

from batchcorder._cli.errors import CLIError, one_line, os_reason

__all__ = [
    "BATCH_ROWS",
    "STDIN",
    "IncompleteStreamError",
    "Source",
    "detect_kind",
    "open_source",
]

#: Rows per batch where the command chooses (Parquet sources, the demo's
#: stream): 2**16, pyarrow's own default for readers, large enough that the
#: per-batch overhead is noise and small enough that a batch stays a few MiB.
BATCH_ROWS = 65_536

_Reader = TypeVar("_Reader")

#: The SOURCE that means an Arrow IPC stream on standard input.
STDIN = "-"

_PARQUET_MAGIC = b"PAR1"
_IPC_FILE_MAGIC = b"ARROW1"
_IPC_STREAM_MAGIC = b"\xff\xff\xff\xff"
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")
_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}


class IncompleteStreamError(ValueError):
    """An Arrow IPC stream that ended without its end-of-stream marker.

    pyarrow takes an end of file between two messages for the end of the
    stream; a producer that died half-way would look like a shorter, complete
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
        self.label = label
        self.batches = batches


class _EndTrackingFile:
    """A binary file for pyarrow's stream reader that remembers how its last read ended.

    pyarrow reads the stream message by message, asking for exactly the bytes
    it needs: the end-of-stream marker is a full read of 8 bytes
    (``0xFFFFFFFF`` then a length of 0) or, in the legacy format, of 4 zero
    bytes. A stream cut between two messages ends with a short read instead.
    Whether the last read was short is all this tells; the values of the
    last bytes are not looked at (a message body can end with the same bytes).
    Nothing is read ahead, so nothing past the marker is consumed.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.ended_short = False

    @property
    def closed(self) -> bool:
        return bool(getattr(self._raw, "closed", False))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes: fewer only at the end of the input."""
        if size is None or size < 0:
            data = self._raw.read()
            self.ended_short = True
            return data
        data = self._raw.read(size)
        if data is None:
            data = b""
        if 0 < len(data) < size:
            # A pipe may return less than asked before its end: fill the request.
            parts = [data]
            got = len(data)
            while got < size:
                more = self._raw.read(size - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self.ended_short = len(data) < size
        return data

    def close(self) -> None:
        self._raw.close()


def _complete_batches(
    reader: pa.RecordBatchReader, file: _EndTrackingFile, label: str
) -> Iterator[pa.RecordBatch]:
    """The batches of ``reader``, then :class:`IncompleteStreamError` if it ended with no marker."""
    batches = 0
    for batch in reader:
        batches += 1
        yield batch
    if file.ended_short:
        raise IncompleteStreamError(label, batches)


def _open_complete_stream(raw: BinaryIO, label: str) -> Source:
    """An Arrow IPC stream over ``raw`` that must end with its end-of-stream marker."""
    file = _EndTrackingFile(raw)
    stream = pa.ipc.open_stream(file)
    reader = pa.RecordBatchReader.from_batches(
        stream.schema, _complete_batches(stream, file, label)
    )
    return Source(reader, label, "arrow-stream", _closers=[file.close, stream.close, reader.close])


@dataclass
class Source:
    """An opened SOURCE.

    Its ``reader`` (not yet read), ``label`` for messages, ``kind`` (``parquet``,
    ``csv``, ``arrow-file``, ``arrow-stream``) and ``total_rows`` when known up
    front (Parquet), for the progress bar.
    """

    reader: pa.RecordBatchReader
    label: str
    kind: str
    total_rows: int | None = None
    _closers: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close the reader and any file behind it. Idempotent."""
        while self._closers:
            self._closers.pop()()


def detect_kind(head: bytes, name: str) -> str | None:
    """A source's kind from its magic bytes, else its name (``.csv``, ``.tsv``, compressed); or None.

    Examples
    --------
    >>> detect_kind(b"PAR1\x15\x04", "data.bin"), detect_kind(b"id,name", "events.csv.gz")
    ('parquet', 'csv')
    >>> detect_kind(b"hello", "notes.txt") is None
    True
    """
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_IPC_FILE_MAGIC):
        return "arrow-file"
    if head.startswith(_IPC_STREAM_MAGIC):
        return "arrow-stream"
    suffixes = [suffix.lower() for suffix in Path(name).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    if suffixes and suffixes[-1] in _CSV_SUFFIXES:
        return suffixes[-1][1:]
    return None


def open_source(spec: str, stdin: BinaryIO | None = None) -> Source:
    """Open SOURCE, a path or ``-`` (an Arrow IPC stream on ``stdin``), as a stream.

    Raises :class:`CLIError` if it cannot be read or its kind cannot be told;
    close the returned :class:`Source` when done.

    Examples
    --------
    >>> open_source("no/such/file.parquet")
    Traceback (most recent call last):
    ...
    batchcorder._cli.errors.CLIError: cannot read 'no/such/file.parquet': No such file or directory
    """
    if spec == STDIN:
        return _open_stdin(stdin)
    path = Path(spec)
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except OSError as error:
        raise CLIError(f"cannot read {spec!r}: {_reason(error)}") from error
    kind = detect_kind(head, path.name)
    if kind is None:
        what = "it is empty" if not head else "expected Parquet, Arrow IPC, .csv or .tsv"
        raise CLIError(f"unknown file type: {spec!r} ({what})")
    try:
        return _OPENERS[kind](path, repr(spec))
    except (OSError, pa.ArrowException) as error:
        raise CLIError(f"cannot read {spec!r} as {kind}: {one_line(error)}") from error


def _reason(error: OSError) -> str:
    if error.errno == errno.EISDIR:
        return "it is a directory"
    return os_reason(error)


def _open_stdin(stdin: BinaryIO | None) -> Source:
    if stdin is None:
        import sys

        stdin = sys.stdin.buffer
    if stdin.isatty():
        raise CLIError(
            "standard input is a terminal: pipe an Arrow IPC stream into it, "
            "or give a file as SOURCE"
        )
    peek = getattr(stdin, "peek", None)
    head = peek(8)[:8] if peek is not None else b""
    if head.startswith((_PARQUET_MAGIC, _IPC_FILE_MAGIC)):
        kind = "a Parquet file" if head.startswith(_PARQUET_MAGIC) else "an Arrow IPC file"
        raise CLIError(
            f"standard input holds {kind}, not an Arrow IPC stream: give its path as SOURCE"
        )
    try:
        return _open_complete_stream(stdin, "standard input")
    except pa.ArrowException as error:
        message = one_line(error)
        if "null or length 0" in message:
            message = "the input is empty"
        raise CLIError(f"standard input is not an Arrow IPC stream: {message}") from error


def _open_parquet(path: Path, label: str) -> Source:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    batches = parquet.iter_batches(batch_size=BATCH_ROWS)
    reader = pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches)
    return Source(
        reader,
        label,
        "parquet",
        total_rows=parquet.metadata.num_rows,
        _closers=[parquet.close, reader.close],
    )


def _opened_over(file: pa.NativeFile, open_reader: Callable[[pa.NativeFile], _Reader]) -> _Reader:
    """``open_reader(file)``; ``file`` is closed if that fails, and left open otherwise."""
    try:
        return open_reader(file)
    except BaseException:
        file.close()
        raise


def _open_ipc_file(path: Path, label: str) -> Source:
    mapped = pa.memory_map(os.fspath(path))
    ipc = _opened_over(mapped, pa.ipc.open_file)

    def batches() -> Iterator[pa.RecordBatch]:
        for index in range(ipc.num_record_batches):
            yield ipc.get_batch(index)

    reader = pa.RecordBatchReader.from_batches(ipc.schema, batches())
    return Source(reader, label, "arrow-file", _closers=[mapped.close, reader.close])


def _open_ipc_stream(path: Path, label: str) -> Source:
    file = path.open("rb")
    try:
        return _open_complete_stream(file, label)
    except BaseException:
        file.close()
        raise


def _open_csv(path: Path, label: str, delimiter: str = ",") -> Source:
    import pyarrow.csv as pa_csv

    stream = pa.input_stream(os.fspath(path), compression="detect")
    options = pa_csv.ParseOptions(delimiter=delimiter)
    reader = _opened_over(stream, lambda opened: pa_csv.open_csv(opened, parse_options=options))
    return Source(reader, label, "csv", _closers=[stream.close, reader.close])


def _open_tsv(path: Path, label: str) -> Source:
    return _open_csv(path, label, delimiter="\t")


_OPENERS: dict[str, Callable[[Path, str], Source]] = {
    "parquet": _open_parquet,
    "arrow-file": _open_ipc_file,
    "arrow-stream": _open_ipc_stream,
    "csv": _open_csv,
    "tsv": _open_tsv,
}
