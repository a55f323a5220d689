"""What a client of :func:`batchcorder.flight.serve` is told when a call fails.

A client gets one short message and the Flight status that says what kind of
failure it is; the details (the server's traceback, file paths, the cache
file's name) go to the server's log, the ``batchcorder.flight`` logger.

=============================  ===================  ===============================
class                          status               pyarrow clients raise
=============================  ===================  ===============================
:class:`InvalidArgument`       INVALID_ARGUMENT     ``pyarrow.ArrowInvalid``
:class:`Unimplemented`         UNIMPLEMENTED        ``pyarrow.ArrowNotImplementedError``
:class:`Unauthenticated`       UNAUTHENTICATED      ``FlightUnauthenticatedError``
:class:`Unavailable`           UNAVAILABLE          ``FlightUnavailableError``
:class:`Failed`                UNKNOWN              ``FlightServerError``
=============================  ===================  ===============================

pyarrow sends any Python exception but its own ``FlightError`` classes with the
Python traceback appended to the message, and has no ``FlightError`` for
INVALID_ARGUMENT or UNIMPLEMENTED. So the Flight methods are split in two: the
work, which never raises but returns a :class:`Refusal`, and a two-line handler
compiled under the file name ``<batchcorder.flight>``, which raises the refusal
itself. The traceback pyarrow appends then holds pyarrow's own frame and that
handler's, without a path or a line of the server's code.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import pyarrow as pa
from pyarrow import flight

__all__ = [
    "LOGGER",
    "ClientError",
    "Failed",
    "InvalidArgument",
    "Refusal",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "answer",
    "failure_message",
    "quoted",
    "relay",
]

#: The server's log: every failure with its details, and refused logins.
#: Silent unless the application configures logging.
LOGGER = logging.getLogger("batchcorder.flight")
LOGGER.addHandler(logging.NullHandler())

#: How much of a client's input a message quotes.
QUOTED_BYTES = 40

#: The longest message a client is sent.
_MAX_MESSAGE = 300

_Result = TypeVar("_Result")


def quoted(data: bytes | str) -> str:
    """A short prefix of a client's input, for a message.

    Examples
    --------
    >>> quoted(b"x" * 100)
    "b'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (100 bytes)"
    >>> quoted("abc")
    "'abc'"
    """
    if len(data) <= QUOTED_BYTES:
        return repr(data)
    unit = "bytes" if isinstance(data, bytes) else "characters"
    return f"{data[:QUOTED_BYTES]!r}... ({len(data):,} {unit})"


#: How pyarrow appends a Python traceback to the message of an error that
#: crossed the Arrow C stream interface.
_TRACEBACK_DETAIL = ". Detail: Python exception: Traceback"


def _one_line(text: str) -> str:
    line = " ".join(text.split(_TRACEBACK_DETAIL, 1)[0].split())
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def _for_client(kind: type[BaseException], error: ClientError) -> BaseException:
    """An exception of the pyarrow class ``kind`` with the one-line message of ``error``."""
    return kind(_one_line(str(error)))


class ClientError(Exception):
    """A failure whose message is for the client; :meth:`for_client` is what it gets.

    Each kind names the error pyarrow turns into its Flight status.
    """

    #: What pyarrow sends as this kind's status.
    status: ClassVar[type[BaseException]]

    def for_client(self) -> BaseException:
        return _for_client(self.status, self)


class InvalidArgument(ClientError):
    """A ticket, descriptor or other input the server cannot use."""

    status = pa.ArrowInvalid


class Unimplemented(ClientError):
    """A Flight method this server does not offer."""

    status = pa.ArrowNotImplementedError


class Unauthenticated(ClientError):
    """A call without valid credentials."""

    status = flight.FlightUnauthenticatedError


class Unavailable(ClientError):
    """The server is shutting down, or the cache cannot take another reader now."""

    status = flight.FlightUnavailableError


class Failed(ClientError):
    """The data cannot be sent: the source failed, or the server's cache did."""

    status = flight.FlightServerError


def failure_message(error: BaseException) -> str:
    """What a client is told of ``error``, raised by the source or the cache.

    The upstream's own errors keep their type and first line; the cache's
    file errors say what happened without the file's path.

    Examples
    --------
    >>> failure_message(ValueError("producer died\\nmore"))
    'ValueError: producer died more'
    >>> failure_message(OSError(errno.ENOSPC, "No space left on device", "/var/tmp/x"))
    "the server's file system is full (No space left on device)"
    """
    if isinstance(error, OSError) and not isinstance(error, pa.ArrowException):
        return _os_failure(error)
    return f"{type(error).__name__}: {_one_line(str(error) or type(error).__name__)}"


def _os_failure(error: OSError) -> str:
    from batchcorder.errors import CacheFileError, DiskCapacityError

    if isinstance(error, DiskCapacityError):
        return "the server's cache is full: its file reached the disk capacity it was given"
    if isinstance(error, CacheFileError):
        return "the server's cache file was changed or cut by another process"
    if error.errno == errno.ENOSPC:
        return "the server's file system is full (No space left on device)"
    if error.errno == errno.EFBIG:
        return "the server's cache file reached the largest file size allowed (File too large)"
    reason = error.strerror or type(error).__name__
    return f"the server could not read or write a file ({reason})"


class Refusal:
    """What a Flight method's work returns instead of raising: the error for the client."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def refused(error: BaseException, what: str) -> Refusal:
    """The :class:`Refusal` of ``error`` raised while doing ``what``; unexpected ones are logged."""
    if isinstance(error, ClientError):
        cause = error.__cause__
        if cause is None:
            LOGGER.info("%s refused: %s", what, error)
        else:
            LOGGER.warning("%s failed: %s", what, error, exc_info=cause)
        return Refusal(error.for_client())
    LOGGER.error("%s failed", what, exc_info=error)
    return Refusal(
        Failed(f"the server failed to answer {what} (see the server's log)").for_client()
    )


def guarded(what: str, work: Callable[..., _Result]) -> Callable[..., _Result | Refusal]:
    """``work`` turned into a function that returns a :class:`Refusal` instead of raising."""

    @functools.wraps(work)
    def run(*arguments: Any) -> _Result | Refusal:
        try:
            return work(*arguments)
        except Exception as error:  # every failure reaches the client as a refusal
            return refused(error, what)

    return run


# The only frames of ours in the traceback pyarrow sends: no path, no source line.
# ``yield from`` hands a close (the client went away) straight to ``batches``,
# which never raises: its failures are left in the refusal.
_HANDLERS = """
def answer(work):
    def handler(self, *arguments):
        outcome = work(self, *arguments)
        if outcome.__class__ is Refusal:
            raise outcome.error
        return outcome
    return handler

def relay(batches, refusal):
    yield from batches
    if refusal.error is not None:
        raise refusal.error
"""
_compiled: dict[str, Any] = {"Refusal": Refusal}
exec(compile(_HANDLERS, "<batchcorder.flight>", "exec"), _compiled)


def answer(what: str, work: Callable[..., Any]) -> Callable[..., Any]:
    """A Flight method doing ``work``: its failures reach the client as their status.

    Examples
    --------
    >>> method = answer("get_schema", lambda self: (_ for _ in ()).throw(InvalidArgument("no")))
    >>> method(None)
    Traceback (most recent call last):
    ...
    pyarrow.lib.ArrowInvalid: no
    """
    handler: Callable[..., Any] = _compiled["answer"](guarded(what, work))
    return handler


def relay(batches: Iterator[pa.RecordBatch], refusal: Refusal) -> Iterator[pa.RecordBatch]:
    """``batches``, then ``refusal.error`` raised if the stream ended in one."""
    stream: Iterator[pa.RecordBatch] = _compiled["relay"](batches, refusal)
    return stream
