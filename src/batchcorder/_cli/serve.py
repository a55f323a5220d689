"""``batchcorder serve``: cache one source and serve it over Arrow Flight until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pyarrow as pa

from batchcorder._cli.arguments import add_source_argument, count
from batchcorder._cli.errors import CLIError, note, one_line, os_reason, standard_streams
from batchcorder._cli.sizes import format_size
from batchcorder.errors import DiskCapacityError

if TYPE_CHECKING:
    from batchcorder import StreamCache
    from batchcorder._cli.sources import Source
    from batchcorder.flight import CacheServer

__all__ = ["MIN_SECRET_LENGTH", "add_serve_parser", "run_serve", "serve_source"]

#: The fewest characters a token or password given to the command may have.
MIN_SECRET_LENGTH = 16

#: Seconds to wait, after Ctrl-C, for the calls in flight to end: long enough
#: for a client to read the batch it is being sent, short enough that a
#: client that stopped reading does not keep the command from exiting.
CLOSE_TIMEOUT = 5.0

#: The highest TCP port number.
_MAX_PORT = 65_535

#: The most batch ranges a finished cache is offered in by default: enough
#: for a few clients to split the work, few enough that each range is large.
_DEFAULT_ENDPOINTS = 4

_EPILOG = """\
examples:
  batchcorder serve events.parquet
  some-producer | batchcorder serve - --port 8815
  BC_TOKEN=$(openssl rand -hex 24) batchcorder serve big.csv --host 0.0.0.0 \\
      --token-env BC_TOKEN --tls-cert server.pem --tls-key server.key \\
      --disk /var/tmp/bc --disk-capacity 50GiB
  BC_PASSWORD=... batchcorder serve big.csv --username reader \\
      --password-env BC_PASSWORD

Tokens and passwords have at least 16 characters. Credentials are refused over
plain gRPC on an address other than loopback unless --allow-insecure is given.

The first line on standard output is the location clients connect to, e.g.
grpc://127.0.0.1:40123; it is printed before the source is read, so clients
can read while it is being pulled. The source is read once, however many
clients read it. In Python:

  import pyarrow.flight
  client = pyarrow.flight.connect("grpc://127.0.0.1:40123")
  table = client.do_get(pyarrow.flight.Ticket(b"{}")).read_all()
"""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= value <= _MAX_PORT:
        raise argparse.ArgumentTypeError(f"a port is between 0 and {_MAX_PORT}, got {value}")
    return value


def add_serve_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``commands`` (what ``add_subparsers`` returned)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="cache a Parquet, CSV or Arrow IPC file, or an Arrow IPC stream on standard "
        "input, and serve it over Arrow Flight until Ctrl-C",
        description="Cache SOURCE, read it once, and serve it over Arrow Flight until\n"
        "Ctrl-C (or SIGTERM). Prints the location clients connect to.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_argument(parser)
    flight = parser.add_argument_group("Arrow Flight")
    flight.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only; "
        "0.0.0.0 for every interface)",
    )
    flight.add_argument(
        "--port", type=_port, default=0, help="the TCP port (default 0: any free port)"
    )
    flight.add_argument(
        "--name",
        default="cache",
        help="the flight's name, its descriptor path (default cache)",
    )
    flight.add_argument(
        "--token-env",
        metavar="VAR",
        help="require the bearer token held in environment variable VAR on every call "
        "(header 'authorization: Bearer <token>')",
    )
    flight.add_argument(
        "--username",
        help="basic auth: clients log in with this user name and the password of "
        "--password-env (the Flight handshake) and get a bearer token back",
    )
    flight.add_argument(
        "--password-env",
        metavar="VAR",
        help="basic auth: the environment variable holding the password",
    )
    flight.add_argument("--tls-cert", metavar="PEM", help="TLS: the certificate chain file")
    flight.add_argument("--tls-key", metavar="PEM", help="TLS: the private key file")
    flight.add_argument(
        "--tls-client-ca",
        metavar="PEM",
        help="mutual TLS: accept only clients with a certificate signed by these roots",
    )
    flight.add_argument(
        "--allow-insecure",
        action="store_true",
        help="send credentials over plain gRPC to an address other than loopback "
        "(anyone on the network path can read them)",
    )
    flight.add_argument(
        "--endpoints",
        metavar="N",
        type=count(1),
        default=_DEFAULT_ENDPOINTS,
        help="the most batch ranges a client is offered to split the work "
        f"(default {_DEFAULT_ENDPOINTS})",
    )
    parser.set_defaults(run=run_serve)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """Run ``batchcorder serve`` with parsed arguments; see :func:`serve_source`."""
    if args.debug:
        # The server's log: each refused call and failure, with its details.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("batchcorder: %(levelname)s: %(message)s"))
        flight_log = logging.getLogger("batchcorder.flight")
        flight_log.addHandler(handler)
        flight_log.setLevel(logging.DEBUG)
    else:
        # gRPC logs its own lines to standard error (a port in use, ...); the
        # error batchcorder reports says the same in one line.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    return serve_source(args)


def _read_secret(option: str, variable: str | None) -> str | None:
    """The token or password held in environment variable ``variable``, checked."""
    if variable is None:
        return None
    secret = os.environ.get(variable, "").strip()
    if not secret:
        raise CLIError(
            f"{option} {variable}: the environment variable {variable} is not set or empty"
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise CLIError(
            f"{option} {variable}: the secret has {len(secret)} characters; use at least "
            f"{MIN_SECRET_LENGTH} (e.g. the output of 'openssl rand -hex 24')"
        )
    return secret


def _read_login(username: str | None, password_env: str | None) -> tuple[str, str] | None:
    if username is None and password_env is None:
        return None
    if username is None or password_env is None:
        raise CLIError("--username and --password-env go together")
    password = _read_secret("--password-env", password_env)
    return username, password or ""


def _read_pems(*options: tuple[str, str]) -> list[bytes]:
    pems = []
    for option, path in options:
        try:
            pems.append(Path(path).read_bytes())
        except OSError as error:
            raise CLIError(f"{option}: cannot read {path!r}: {os_reason(error)}") from error
    return pems


def _read_tls(tls_cert: str | None, tls_key: str | None) -> list[tuple[bytes, bytes]] | None:
    if tls_cert is None and tls_key is None:
        return None
    if tls_cert is None or tls_key is None:
        raise CLIError("--tls-cert and --tls-key go together")
    cert, key = _read_pems(("--tls-cert", tls_cert), ("--tls-key", tls_key))
    return [(cert, key)]


@dataclass(frozen=True)
class _Security:
    """What clients must show, and the TLS material: the command's security options, read."""

    token: str | None
    login: tuple[str, str] | None
    certificates: list[tuple[bytes, bytes]] | None
    client_roots: bytes | None

    @property
    def credentials(self) -> bool:
        return self.token is not None or self.login is not None


def _read_security(
    token_env: str | None,
    username: str | None,
    password_env: str | None,
    tls: tuple[str | None, str | None, str | None],
) -> _Security:
    tls_cert, tls_key, tls_client_ca = tls
    certificates = _read_tls(tls_cert, tls_key)
    roots = None
    if tls_client_ca is not None:
        if certificates is None:
            raise CLIError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        (roots,) = _read_pems(("--tls-client-ca", tls_client_ca))
    return _Security(
        _read_secret("--token-env", token_env),
        _read_login(username, password_env),
        certificates,
        roots,
    )


def _check_exposure(
    host: str, security: _Security, stderr: TextIO, *, allow_insecure: bool, quiet: bool
) -> None:
    """Refuse credentials in clear text on the network; warn about what is open to it."""
    if _is_loopback(host):
        return
    if security.credentials and security.certificates is None:
        what = "the token" if security.token is not None else "the password"
        if not allow_insecure:
            raise CLIError(
                f"serving on {host} over plain gRPC would send {what} in clear text: "
                "add --tls-cert and --tls-key, or --allow-insecure to do it anyway"
            )
        note(
            stderr,
            f"warning: --allow-insecure: {what} travels in clear text to {host}; anyone "
            "on the network path can read it, and the data",
            quiet=quiet,
        )
    elif not security.credentials:
        note(
            stderr,
            f"warning: serving on {host} without --token-env or --username: anyone who "
            "can reach this port can read the data",
            quiet=quiet,
        )


def _listen_location(host: str, port: int, tls: bool) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"grpc{'+tls' if tls else ''}://{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_source(args: argparse.Namespace) -> int:
    """Cache ``source``, serve it over Arrow Flight, pull it once, serve until Ctrl-C; return 0.

    The server starts first and its location is written to ``stdout`` (one
    line), so that clients can read while the source is pulled; then the
    whole source is ingested, and the server runs until SIGINT or SIGTERM,
    which stop it normally. The cache, and its file, is removed on the way
    out. The options are those of ``batchcorder serve --help``.

    Raises
    ------
    CLIError
        For bad input (an unreadable source, a port that is taken, ...), and
        when the source fails: every client is told, then the server stops.
    KeyboardInterrupt
        If interrupted before the whole source is read.
    """
    from batchcorder._cli.caching import cached_source, warn_about_cache_options

    stdout, stderr = standard_streams(args.stdout, args.stderr)
    disk, disk_capacity, quiet = args.disk, args.disk_capacity, args.quiet
    warn_about_cache_options(disk, disk_capacity, args.memory_capacity, stderr, quiet=quiet)
    tls = (args.tls_cert, args.tls_key, args.tls_client_ca)
    security = _read_security(args.token_env, args.username, args.password_env, tls)
    _check_exposure(args.host, security, stderr, allow_insecure=args.allow_insecure, quiet=quiet)
    location = _listen_location(args.host, args.port, security.certificates is not None)
    with cached_source(args.source, args.stdin, disk, disk_capacity, args.memory_capacity) as (
        opened,
        cache,
    ):
        server = _start_server(cache, location, args.name, security, args.endpoints)
        try:
            stdout.write(f"{server.location}\n".encode())
            stdout.flush()
            _say_where_else(server, stderr, quiet=quiet)
            if _ingest_unless_stopped(
                cache, opened, server, (disk, disk_capacity), stderr, quiet=quiet
            ):
                _serve_until_stopped(server, cache, stderr, quiet=quiet)
        finally:
            abandoned = not _close_server(server, stderr, quiet=quiet)
    if abandoned:
        # gRPC still waits for that client in a thread that cannot be stopped;
        # the cache and its files are gone, so leave without waiting for it.
        stdout.flush()
        os._exit(0)
    return 0


def _start_server(
    cache: StreamCache, location: str, name: str, security: _Security, endpoints: int
) -> CacheServer:
    """:func:`batchcorder.flight.serve`, its failures to listen turned into :class:`CLIError`."""
    from batchcorder.flight import serve

    username, password = security.login or (None, None)
    try:
        return serve(
            cache,
            location,
            name=name,
            token=security.token,
            tls_certificates=security.certificates,
            verify_client=security.client_roots is not None,
            root_certificates=security.client_roots,
            endpoints=endpoints,
            username=username,
            password=password,
        )
    except OSError as error:  # the port is in use, the host unknown, ...
        raise CLIError(os_reason(error)) from error
    except (pa.ArrowException, ValueError) as error:
        raise CLIError(f"cannot serve on {location}: {one_line(error)}") from error


def _say_where_else(server: CacheServer, stderr: TextIO, *, quiet: bool) -> None:
    """Name the other locations of a server listening on every interface."""
    others = server.locations[1:]
    if others:
        note(stderr, f"other machines connect to {', '.join(others)}", quiet=quiet)


def _ingest_unless_stopped(
    cache: StreamCache,
    opened: Source,
    server: CacheServer,
    disk: tuple[str | None, int | None],
    stderr: TextIO,
    *,
    quiet: bool,
) -> bool:
    """Ingest the whole source; False if stopped once it was read (a normal stop).

    A signal that lands after the last batch was pulled (clients may pull the
    source themselves), while the progress bar is being closed, stops the
    server as it would a moment later. Before that, it interrupts. If the
    source fails, the server tells its clients before the error is raised.
    """
    from batchcorder._cli.caching import ingest

    try:
        ingest(cache, opened, stderr, quiet=quiet, disk_capacity=disk[1])
    except CLIError as error:
        cause = error.__cause__ if error.__cause__ is not None else error
        server.report_failure(cause)
        raise (_file_system_error(cause, disk[0]) or error) from cause
    except KeyboardInterrupt:
        if not cache.upstream_exhausted:
            raise
        note(stderr, "server stopped", quiet=quiet)
        return False
    return True


def _serve_until_stopped(
    server: CacheServer, cache: StreamCache, stderr: TextIO, *, quiet: bool
) -> None:
    """Say what is served, then serve until Ctrl-C or SIGTERM."""
    stats = cache.stats
    note(
        stderr,
        f"serving {stats.ingested_rows:,} rows in {stats.ingested_batches:,} batches as "
        f"{server.name!r} at {server.location}; Ctrl-C to stop",
        quiet=quiet,
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        note(stderr, "server stopped", quiet=quiet)


def _close_server(server: CacheServer, stderr: TextIO, *, quiet: bool) -> bool:
    """Close ``server``; whether every call in flight ended within :data:`CLOSE_TIMEOUT`."""
    try:
        server.close(CLOSE_TIMEOUT)
    except TimeoutError as error:
        note(stderr, f"warning: {error}; exiting anyway", quiet=quiet)
        return False
    return True


# -- a full file system ------------------------------------------------------


def _file_system_error(error: BaseException, disk: str | None) -> CLIError | None:
    """A :class:`CLIError` naming the file system or the limit behind ENOSPC or EFBIG."""
    if disk is None or not isinstance(error, OSError) or isinstance(error, DiskCapacityError):
        return None
    if error.errno == errno.ENOSPC:
        return CLIError(no_space_message(disk))
    if error.errno == errno.EFBIG:
        return CLIError(too_large_message(disk))
    return None


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _file_system_type(mount: Path) -> str | None:
    """The type of the file system mounted at ``mount`` (the last mount there wins)."""
    kind = None
    try:
        with Path("/proc/mounts").open(encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and fields[1] == str(mount):
                    kind = fields[2]
    except OSError:
        return None
    return kind


def _file_system(disk: str) -> str:
    mount = _mount_point(Path(disk))
    kind = _file_system_type(mount)
    return f"the file system mounted at {str(mount)!r}" + (f" ({kind})" if kind else "")


def no_space_message(disk: str) -> str:
    """Say which file system holding the cache file ``--disk`` is full, and how full.

    Examples
    --------
    >>> no_space_message("/")  # doctest: +ELLIPSIS
    "the cache file in '/' filled the file system mounted at '/'... free of ...; give --disk a directory on a larger file system or a smaller --disk-capacity"
    """
    usage = os.statvfs(disk) if Path(disk).is_dir() else None
    room = ""
    if usage is not None:
        free = usage.f_bavail * usage.f_frsize
        total = usage.f_blocks * usage.f_frsize
        room = f": {format_size(free)} free of {format_size(total)}"
    return (
        f"the cache file in {disk!r} filled {_file_system(disk)}{room}; give --disk a "
        "directory on a larger file system or a smaller --disk-capacity"
    )


def too_large_message(disk: str) -> str:
    """Say which limit stopped the cache file in ``--disk`` from growing (EFBIG).

    Examples
    --------
    >>> "the cache file in '/tmp'" in too_large_message("/tmp")
    True
    """
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY:
        return (
            f"the cache file in {disk!r} reached this process's file size limit "
            f"(ulimit -f: {format_size(limit)}); raise it or give a smaller --disk-capacity"
        )
    return (
        f"the cache file in {disk!r} reached the largest file {_file_system(disk)} "
        "allows; give a smaller --disk-capacity or a directory on another file system"
    )
