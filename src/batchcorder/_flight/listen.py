"""Where and how :func:`batchcorder.flight.serve` listens: its arguments, checked.

The location, the TLS material and the other options of ``serve`` are checked
here, each by one function that raises ``TypeError``/``ValueError`` naming the
argument; :func:`start_service` starts the Flight server and, if it cannot
listen, says why with an ``OSError``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from pyarrow import flight

from batchcorder import StreamCache
from batchcorder._flight.auth import Credentials
from batchcorder._flight.service import CacheService

__all__ = [
    "check_endpoints",
    "check_name",
    "check_tls",
    "client_locations",
    "client_roots",
    "is_loopback_uri",
    "listen_uri",
    "pem_pairs",
    "served_uri",
    "start_service",
]

_TCP_SCHEMES = ("grpc", "grpc+tcp")
_TLS_SCHEME = "grpc+tls"
_UNIX_SCHEME = "grpc+unix"


def listen_uri(location: object) -> tuple[str, str]:
    """``(uri, scheme)`` of the ``location`` argument.

    Examples
    --------
    >>> listen_uri("grpc://127.0.0.1:0")
    ('grpc://127.0.0.1:0', 'grpc')
    """
    uri = _location_text(location)
    parts = urlsplit(uri)
    if parts.scheme not in (*_TCP_SCHEMES, _TLS_SCHEME, _UNIX_SCHEME):
        raise ValueError(
            f"location must be a grpc://, grpc+tls:// or grpc+unix:// URI, got {uri!r}"
        )
    if parts.scheme != _UNIX_SCHEME and not _names_host_and_port(uri):
        raise ValueError(f"location must name a host and a port (0 for any free one), got {uri!r}")
    return uri, parts.scheme


def _location_text(location: object) -> str:
    if isinstance(location, flight.Location):
        return location.uri.decode() if isinstance(location.uri, bytes) else str(location.uri)
    if isinstance(location, str):
        return location
    raise TypeError(
        f"location must be a str such as 'grpc://127.0.0.1:0' or a "
        f"pyarrow.flight.Location, got {type(location).__name__}"
    )


def _names_host_and_port(uri: str) -> bool:
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    return bool(parts.hostname) and port is not None


def served_uri(uri: str, port: int) -> str:
    """``uri`` with port 0 replaced by the port the server got.

    Examples
    --------
    >>> served_uri("grpc://127.0.0.1:0", 40123)
    'grpc://127.0.0.1:40123'
    """
    parts = urlsplit(uri)
    if parts.scheme == _UNIX_SCHEME or parts.port != 0:
        return uri
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


#: Hosts that mean "every interface": not an address a client can connect to.
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def client_locations(uri: str, port: int) -> list[str]:
    """The URIs a client can connect to, for a server listening at ``uri`` on ``port``.

    A server listening on every interface (``0.0.0.0`` or ``::``) is reached
    at the loopback address from this machine, and from others at this
    machine's name and addresses: those come first and after.

    Examples
    --------
    >>> client_locations("grpc://127.0.0.1:0", 40123)
    ['grpc://127.0.0.1:40123']
    >>> client_locations("grpc://0.0.0.0:0", 40123)[0]
    'grpc://127.0.0.1:40123'
    >>> client_locations("grpc://[::]:8815", 8815)[0]
    'grpc://[::1]:8815'
    """
    served = served_uri(uri, port)
    parts = urlsplit(served)
    if parts.scheme == _UNIX_SCHEME or parts.hostname not in _WILDCARD_HOSTS:
        return [served]
    locations = [_with_host(parts, _WILDCARD_HOSTS[parts.hostname], port)]
    for host in _this_machine(ipv6=parts.hostname == "::"):
        location = _with_host(parts, host, port)
        if location not in locations:
            locations.append(location)
    return locations


def _with_host(parts: Any, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    location: str = urlunsplit(parts._replace(netloc=f"{shown}:{port}"))
    return location


def _this_machine(*, ipv6: bool) -> list[str]:
    """This machine's name and its addresses other than loopback (from its own resolver)."""
    name = socket.gethostname()
    hosts = [name] if name else []
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return hosts
    for family, _, _, _, address in infos:
        if family == socket.AF_INET6 and not ipv6:
            continue
        host = str(address[0])
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            continue
        if host not in hosts:
            hosts.append(host)
    return hosts


def is_loopback_uri(uri: str) -> bool:
    """Whether a server at ``uri`` is reachable from this machine only.

    Examples
    --------
    >>> is_loopback_uri("grpc://127.0.0.1:0"), is_loopback_uri("grpc://0.0.0.0:0")
    (True, False)
    """
    parts = urlsplit(uri)
    if parts.scheme == _UNIX_SCHEME or parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return False


def check_name(name: object) -> str:
    """``name`` if it can name a flight (a non-empty str)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    return name


def check_endpoints(endpoints: object) -> int:
    """``endpoints`` if it is a count of endpoints (an int >= 1)."""
    if isinstance(endpoints, bool) or not isinstance(endpoints, int):
        raise TypeError(f"endpoints must be an int, got {type(endpoints).__name__}")
    if endpoints < 1:
        raise ValueError(f"endpoints must be >= 1, got {endpoints}")
    return endpoints


# -- TLS ---------------------------------------------------------------------


def _read_pem(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"{what} must be PEM data as bytes or str, got {type(value).__name__}")


def pem_pairs(
    tls_certificates: Sequence[tuple[bytes | str, bytes | str]] | None,
) -> list[tuple[bytes, bytes]] | None:
    """The ``(certificate, key)`` pairs of ``tls_certificates`` as PEM bytes."""
    if tls_certificates is None:
        return None
    certificates = [
        (
            _read_pem(cert, "tls_certificates' certificate"),
            _read_pem(key, "tls_certificates' key"),
        )
        for cert, key in tls_certificates
    ]
    if not certificates:
        raise ValueError("tls_certificates must hold at least one (certificate, key) pair")
    return certificates


def check_tls(uri: str, scheme: str, certificates: list[tuple[bytes, bytes]] | None) -> None:
    """Refuse TLS certificates without a TLS location, and the other way round."""
    if (scheme == _TLS_SCHEME) != (certificates is not None):
        raise ValueError(
            "a grpc+tls:// location needs tls_certificates, and tls_certificates "
            f"need a grpc+tls:// location; got location {uri!r} "
            f"{'with' if certificates else 'without'} tls_certificates"
        )


def client_roots(
    scheme: str, root_certificates: bytes | str | None, verify_client: object
) -> bytes | None:
    """The PEM roots client certificates are checked against, if any.

    Every option that could not take effect is refused: mutual TLS without
    TLS, without roots to check clients against, or roots without
    ``verify_client`` (pyarrow would ignore them and let any client in).
    """
    if not isinstance(verify_client, bool):
        raise TypeError(f"verify_client must be a bool, got {type(verify_client).__name__}")
    roots = None
    if root_certificates is not None:
        roots = _read_pem(root_certificates, "root_certificates")
    if verify_client and scheme != _TLS_SCHEME:
        raise ValueError(
            "verify_client=True (mutual TLS) needs a grpc+tls:// location and "
            "tls_certificates: over plain gRPC no client certificate is checked"
        )
    if verify_client and roots is None:
        raise ValueError("verify_client=True needs root_certificates to check clients against")
    if roots is not None and not verify_client:
        raise ValueError(
            "root_certificates are only used with verify_client=True (mutual TLS): "
            "without it, clients would not be asked for a certificate at all"
        )
    return roots


# -- starting ----------------------------------------------------------------


def start_service(
    cache: StreamCache,
    uri: str,
    name: str,
    endpoints: int,
    credentials: Credentials,
    certificates: list[tuple[bytes, bytes]] | None,
    verify_client: bool,
    roots: bytes | None,
) -> CacheService:
    """The Flight service over ``cache``, listening at ``uri``; ``OSError`` saying why not."""
    try:
        return CacheService(
            cache, uri, name, endpoints, credentials, certificates, verify_client, roots
        )
    except pa.ArrowException as error:
        failure = _bind_failure(uri)
        if failure is not None:
            raise failure from error
        raise


def _bind_failure(uri: str) -> OSError | None:
    """Why the server could not listen at ``uri``, found by binding a socket there.

    gRPC reports only "Server did not start properly" (and logs the reason);
    a socket bound to the same address tells which: a port in use, an
    unknown host, an address of no interface here.
    """
    parts = urlsplit(uri)
    if parts.scheme == _UNIX_SCHEME:
        return None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            parts.hostname, parts.port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except OSError as error:
        return OSError(error.errno, f"cannot listen on {uri}: {error.strerror or error}")
    return None
