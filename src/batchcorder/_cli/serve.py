"""``batchcorder serve``: cache one source and serve it over Arrow Flight until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import os
import resource
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from batchcorder._cli.arguments import add_command, count
from batchcorder._cli.errors import CLIError, note, one_line, os_reason, standard_streams
from batchcorder._cli.sizes import format_size
from batchcorder.errors import DiskCapacityError

if TYPE_CHECKING:
    from batchcorder import StreamCache
    from batchcorder.flight import CacheServer

__all__ = ["MIN_SECRET_LENGTH", "add_parser", "run_serve"]

#: The fewest characters a token or password given to the command may have.
MIN_SECRET_LENGTH = 16
#: Seconds the calls in flight get to end after Ctrl-C.
CLOSE_TIMEOUT = 5.0
#: The most batch ranges a finished cache is offered in by default.
_DEFAULT_ENDPOINTS = 4

_EPILOG = """\
examples:
  batchcorder serve events.parquet
  some-producer | batchcorder serve - --port 8815
  BC_TOKEN=$(openssl rand -hex 24) batchcorder serve big.csv --host 0.0.0.0 \\
      --token-env BC_TOKEN --tls-cert server.pem --tls-key server.key

Clients, credentials and TLS:
  https://github.com/batchcorder/batchcorder/blob/main/docs/how-to/flight.md
"""
#: The Arrow Flight options and their help texts, in the order ``--help`` lists them.
_FLIGHT_HELP = {
    "--host": "the address to listen on (default 127.0.0.1: this machine only; "
    "0.0.0.0 for every interface)",
    "--port": "the TCP port (default 0: any free port)",
    "--name": "the flight's name, its descriptor path (default cache)",
    "--token-env": "require the bearer token held in environment variable VAR on every call "
    "(header 'authorization: Bearer <token>')",
    "--username": "basic auth: clients log in with this user name and the password of "
    "--password-env (the Flight handshake) and get a bearer token back",
    "--password-env": "basic auth: the environment variable holding the password",
    "--tls-cert": "TLS: the certificate chain file",
    "--tls-key": "TLS: the private key file",
    "--tls-client-ca": "mutual TLS: accept only clients with a certificate signed by these roots",
    "--allow-insecure": "send credentials over plain gRPC to an address other than loopback "
    "(anyone on the network path can read them)",
    "--endpoints": "the most batch ranges a client is offered to split the work "
    f"(default {_DEFAULT_ENDPOINTS})",
}


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``commands`` (what ``add_subparsers`` returned)."""
    parser = add_command(
        commands,
        "serve",
        run_serve,
        help="cache a Parquet, CSV or Arrow IPC file, or an Arrow IPC stream on standard "
        "input, and serve it over Arrow Flight until Ctrl-C",
        description="Cache SOURCE, read it once, and serve it over Arrow Flight until\n"
        "Ctrl-C (or SIGTERM). Prints the location clients connect to.",
        epilog=_EPILOG,
    )
    settings: dict[str, dict[str, Any]] = {
        "--host": {"default": "127.0.0.1"},
        "--port": {"type": count(0, 65_535, "port"), "default": 0},
        "--name": {"default": "cache"},
        "--allow-insecure": {"action": "store_true"},
        "--endpoints": {"metavar": "N", "type": count(1), "default": _DEFAULT_ENDPOINTS},
    }
    flight = parser.add_argument_group("Arrow Flight")
    for option, help in _FLIGHT_HELP.items():
        metavar = "VAR" if option.endswith("-env") else "PEM" if "--tls" in option else None
        flight.add_argument(option, help=help, **settings.get(option, {"metavar": metavar}))
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """Cache SOURCE, serve it over Arrow Flight, pull it once, serve until Ctrl-C; return 0.

    The server's location is written first (one line), so that clients can
    read while the source is pulled. Bad input (an unreadable source, a port
    that is taken, ...) raises :class:`CLIError`, as does a source that fails,
    once every client is told. The cache, and its file, is removed on the way out.
    """
    from batchcorder._cli.caching import cached_source, ingest

    if args.debug:  # the server's log: each refused call and failure, with its details
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("batchcorder: %(levelname)s: %(message)s"))
        logging.getLogger("batchcorder.flight").addHandler(handler)
        logging.getLogger("batchcorder.flight").setLevel(logging.DEBUG)
    else:  # gRPC's own lines (a port in use, ...) say what the one-line error says
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    stdout, stderr = standard_streams(args.stdout, args.stderr)
    tls = (args.tls_cert, args.tls_key, args.tls_client_ca)
    security = _read_security(args.token_env, args.username, args.password_env, tls)
    quiet = args.quiet
    _check_exposure(args.host, security, stderr, allow_insecure=args.allow_insecure, quiet=quiet)
    address = _ip_address(args.host)
    host = f"[{args.host}]" if address is not None and address.version == 6 else args.host
    scheme = "grpc+tls" if security["tls_certificates"] else "grpc"
    abandoned = False
    with cached_source(args, stderr) as (opened, cache):
        server = _start_server(cache, f"{scheme}://{host}:{args.port}", args, security)
        try:
            stdout.write(f"{server.location}\n".encode())
            stdout.flush()
            _say_where_else(server, stderr, quiet=quiet)
            try:
                try:
                    ingest(cache, opened, stderr, quiet=quiet, disk_capacity=args.disk_capacity)
                except CLIError as error:
                    cause = error.__cause__ or error
                    server.report_failure(cause)
                    raise (_file_system_error(cause, args.disk) or error) from cause
                stats = cache.stats
                note(
                    stderr,
                    f"serving {stats.ingested_rows:,} rows in {stats.ingested_batches:,} "
                    f"batches as {server.name!r} at {server.location}; Ctrl-C to stop",
                    quiet=quiet,
                )
                server.wait()
            except KeyboardInterrupt:  # once the source is read, a normal stop
                if not cache.upstream_exhausted:
                    raise
                note(stderr, "server stopped", quiet=quiet)
        finally:
            try:
                server.close(CLOSE_TIMEOUT)
            except TimeoutError as error:  # a call still in flight
                note(stderr, f"warning: {error}; exiting anyway", quiet=quiet)
                abandoned = True
    if abandoned:
        # gRPC still waits for that client in a thread that cannot be stopped;
        # the cache and its files are gone, so leave without waiting for it.
        stdout.flush()
        os._exit(0)
    return 0


def _secret(option: str, variable: str) -> str:
    """The token or password held in environment variable ``variable``, checked."""
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


def _pem(option: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CLIError(f"{option}: cannot read {path!r}: {os_reason(error)}") from error


def _read_security(
    token_env: str | None,
    username: str | None,
    password_env: str | None,
    tls: tuple[str | None, str | None, str | None],
) -> dict[str, Any]:
    """What clients must show, and the TLS material: keywords of ``batchcorder.flight.serve``."""
    cert, key, client_ca = tls
    if (username is None) != (password_env is None):
        raise CLIError("--username and --password-env go together")
    if (cert is None) != (key is None):
        raise CLIError("--tls-cert and --tls-key go together")
    if client_ca is not None and cert is None:
        raise CLIError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
    pair = None
    if cert is not None and key is not None:
        pair = [(_pem("--tls-cert", cert), _pem("--tls-key", key))]
    return {
        "tls_certificates": pair,
        "verify_client": client_ca is not None,
        "root_certificates": None if client_ca is None else _pem("--tls-client-ca", client_ca),
        "token": None if token_env is None else _secret("--token-env", token_env),
        "username": username,
        "password": None if password_env is None else _secret("--password-env", password_env),
    }


def _check_exposure(
    host: str, security: dict[str, Any], stderr: TextIO, *, allow_insecure: bool, quiet: bool
) -> None:
    """Refuse credentials in clear text on the network; warn about what is open to it."""
    address = _ip_address(host)
    if host == "localhost" or (address is not None and address.is_loopback):
        return
    if security["token"] is None and security["username"] is None:
        note(
            stderr,
            f"warning: serving on {host} without --token-env or --username: anyone who "
            "can reach this port can read the data",
            quiet=quiet,
        )
    elif security["tls_certificates"] is None:
        what = "the token" if security["token"] is not None else "the password"
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


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:  # a host name
        return None


def _start_server(
    cache: StreamCache, location: str, args: argparse.Namespace, security: dict[str, Any]
) -> CacheServer:
    """:func:`batchcorder.flight.serve`, its failures to listen turned into :class:`CLIError`."""
    import pyarrow as pa

    from batchcorder.flight import serve

    try:
        return serve(cache, location, name=args.name, endpoints=args.endpoints, **security)
    except OSError as error:  # the port is in use, the host unknown, ...
        raise CLIError(os_reason(error)) from error
    except (pa.ArrowException, ValueError) as error:
        raise CLIError(f"cannot serve on {location}: {one_line(error)}") from error


def _say_where_else(server: CacheServer, stderr: TextIO, *, quiet: bool) -> None:
    """Name the other locations of a server listening on every interface."""
    if server.locations[1:]:
        note(stderr, f"other machines connect to {', '.join(server.locations[1:])}", quiet=quiet)


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


def _file_system(disk: str) -> str:
    mount = Path(disk).resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    return f"the file system mounted at {str(mount)!r}"


def no_space_message(disk: str) -> str:
    """Say which file system holding the cache file ``--disk`` is full, and how full."""
    room = ""
    if Path(disk).is_dir():
        usage = os.statvfs(disk)
        free, total = usage.f_bavail * usage.f_frsize, usage.f_blocks * usage.f_frsize
        room = f": {format_size(free)} free of {format_size(total)}"
    return (
        f"the cache file in {disk!r} filled {_file_system(disk)}{room}; give --disk a "
        "directory on a larger file system or a smaller --disk-capacity"
    )


def too_large_message(disk: str) -> str:
    """Say which limit stopped the cache file in ``--disk`` from growing (EFBIG)."""
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
