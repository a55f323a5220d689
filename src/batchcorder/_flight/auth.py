"""Who may call a :func:`batchcorder.flight.serve` server: bearer tokens and basic auth.

Two ways in, checked from the call's headers before any Flight method runs
(pyarrow calls a server middleware's ``start_call`` before the method):

- a static bearer token: ``authorization: Bearer <token>`` on every call;
- a user name and password: the standard Flight handshake (what
  ``FlightClient.authenticate_basic_token``, ADBC's Flight SQL driver and the
  Java client send) carries ``authorization: Basic <base64(user:password)>``
  and gets ``authorization: Bearer <session token>`` back in its response
  headers; later calls send that bearer token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from typing import Any

from pyarrow import flight

from batchcorder._flight.errors import LOGGER

__all__ = ["Credentials", "HandshakeOnHeaders", "HeaderAuth", "check_secret"]

#: Session tokens remembered at once; the oldest is forgotten past this (its
#: client logs in again).
MAX_SESSIONS = 4096

#: The longest ``authorization`` header looked at: longer ones are refused unread.
_MAX_HEADER = 4096

_BEARER = "bearer "
_BASIC = "basic "


def check_secret(value: object, what: str) -> str:
    """``value`` if it can travel in an ``authorization`` header.

    Examples
    --------
    >>> check_secret("s3cret", "token")
    's3cret'
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value or not value.isprintable() or value != value.strip():
        raise ValueError(f"{what} must be non-empty printable text without surrounding spaces")
    if len(value.encode()) > _MAX_HEADER // 2:
        raise ValueError(f"{what} must be at most {_MAX_HEADER // 2} bytes")
    return value


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class Credentials:
    """What a call must carry: a static token, a session token from a login, or neither.

    Thread-safe: calls arrive on gRPC's threads.
    """

    def __init__(
        self, token: str | None = None, username: str | None = None, password: str | None = None
    ) -> None:
        self._token = None if token is None else _digest(token)
        self._login = None if username is None else _digest(f"{username}:{password}")
        self._lock = threading.Lock()
        self._sessions: OrderedDict[bytes, None] = OrderedDict()

    @property
    def required(self) -> bool:
        """Whether calls need credentials at all."""
        return self._token is not None or self._login is not None

    @property
    def basic(self) -> bool:
        """Whether a user name and password can log in."""
        return self._login is not None

    def bearer_ok(self, token: str) -> bool:
        """Whether ``token`` is the static token or a session token handed out."""
        digest = _digest(token)
        if self._token is not None and hmac.compare_digest(digest, self._token):
            return True
        with self._lock:
            if digest in self._sessions:
                self._sessions.move_to_end(digest)
                return True
        return False

    def login(self, username: str, password: str) -> str | None:
        """A new session token if ``username`` and ``password`` are right, else None."""
        if self._login is None:
            return None
        if not hmac.compare_digest(_digest(f"{username}:{password}"), self._login):
            return None
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[_digest(session)] = None
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session


def _authorization(headers: dict[str, list[Any]]) -> list[str]:
    values = []
    for value in headers.get("authorization", []):
        raw = value if isinstance(value, bytes) else str(value).encode()
        if len(raw) > _MAX_HEADER:
            continue
        values.append(raw.decode("utf-8", "replace"))
    return values


def _basic_pair(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value[len(_BASIC) :].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


class _SendBearer(flight.ServerMiddleware):
    """Sends the session token of a successful login in the handshake's response headers."""

    def __init__(self, session: str) -> None:
        super().__init__()
        self._session = session

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._session}"}


class HeaderAuth(flight.ServerMiddlewareFactory):
    """Refuse every call without valid credentials in its headers; log users in."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def start_call(
        self, info: flight.CallInfo, headers: dict[str, list[Any]]
    ) -> flight.ServerMiddleware | None:
        values = _authorization(headers)
        for value in values:
            if value.lower().startswith(_BEARER) and self._credentials.bearer_ok(
                value[len(_BEARER) :]
            ):
                return None
        if info.method == flight.FlightMethod.HANDSHAKE and self._credentials.basic:
            for value in values:
                pair = _basic_pair(value) if value.lower().startswith(_BASIC) else None
                session = None if pair is None else self._credentials.login(*pair)
                if session is not None:
                    LOGGER.info("user %r logged in", pair[0] if pair else "")
                    return _SendBearer(session)
            LOGGER.warning("refused a login: wrong user name or password")
            raise flight.FlightUnauthenticatedError("wrong user name or password")
        raise flight.FlightUnauthenticatedError(self._hint())

    def _hint(self) -> str:
        if self._credentials.basic:
            return (
                "this server needs credentials: log in with the Flight handshake "
                "(basic auth, e.g. authenticate_basic_token) and send the bearer token it returns"
            )
        return "this server needs a bearer token: send the header 'authorization: Bearer <token>'"


class HandshakeOnHeaders(flight.ServerAuthHandler):
    """The handshake's own exchange does nothing: the login is in its headers.

    Without an auth handler pyarrow answers every handshake with UNIMPLEMENTED;
    :class:`HeaderAuth` checks the credentials of every call, handshake included.
    """

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""
