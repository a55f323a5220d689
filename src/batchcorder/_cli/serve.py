"""``batchcorder serve``: cache one source and serve it over Arrow Flight until Ctrl-C."""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

import pyarrow as pa

from batchcorder import StreamCache
from batchcorder._cli.arguments import add_source_argument, command_keywords, count
from batchcorder._cli.caching import cached_source, warn_about_cache_options
from batchcorder._cli.errors import CLIError, one_line, os_reason
from batchcorder._cli.query import ingest
from batchcorder._cli.streams import note, standard_streams

if TYPE_CHECKING:
    from batchcorder._cli.sources import Source
    from batchcorder.flight import CacheServer

__all__ = ["add_serve_parser", "run_serve", "serve_source"]

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
  BC_TOKEN=s3cret batchcorder serve big.csv --host 0.0.0.0 --token-env BC_TOKEN \\
      --tls-cert server.pem --tls-key server.key --disk /var/tmp/bc --disk-capacity 50GiB

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
    """Add the ``serve`` subcommand to ``commands`` (what ``add_subparsers`` returned).

    The cache options (``--disk`` ...) and ``--quiet``/``--debug`` are added by
    the caller, as for the other subcommands; running the command calls
    :func:`run_serve`.

    Parameters
    ----------
    commands : argparse subparsers action

    Returns
    -------
    argparse.ArgumentParser
        The ``serve`` parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="batchcorder")
    >>> _ = add_serve_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["serve", "data.parquet", "--port", "8815"])
    >>> args.source, args.host, args.port, args.name, args.run is run_serve
    ('data.parquet', '127.0.0.1', 8815, 'cache', True)
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="cache a Parquet, CSV or Arrow IPC file, or an Arrow IPC stream on standard "
        "input, and serve it over Arrow Flight until Ctrl-C",
        description="Cache SOURCE, read it once, and serve it over Arrow Flight until "
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
    flight.add_argument("--tls-cert", metavar="PEM", help="TLS: the certificate chain file")
    flight.add_argument("--tls-key", metavar="PEM", help="TLS: the private key file")
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
    if not args.debug:
        # gRPC logs its own lines to standard error (a port in use, ...); the
        # error batchcorder reports says the same in one line.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    flight = ("host", "port", "name", "token_env", "tls_cert", "tls_key", "endpoints")
    return serve_source(args.source, **command_keywords(args, *flight))


def _read_token(token_env: str | None) -> str | None:
    if token_env is None:
        return None
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise CLIError(
            f"--token-env {token_env}: the environment variable {token_env} is not set or empty"
        )
    return token


def _read_tls(tls_cert: str | None, tls_key: str | None) -> list[tuple[bytes, bytes]] | None:
    if tls_cert is None and tls_key is None:
        return None
    if tls_cert is None or tls_key is None:
        raise CLIError("--tls-cert and --tls-key go together")
    pems = []
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        try:
            pems.append(Path(path).read_bytes())
        except OSError as error:
            raise CLIError(f"{option}: cannot read {path!r}: {os_reason(error)}") from error
    return [(pems[0], pems[1])]


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


def serve_source(
    source: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str = "cache",
    token_env: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    endpoints: int = _DEFAULT_ENDPOINTS,
    disk: str | None = None,
    disk_capacity: int | None = None,
    memory_capacity: int | None = None,
    quiet: bool = False,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Cache ``source``, serve it over Arrow Flight, pull it once, serve until Ctrl-C.

    The server starts first and its location is written to ``stdout`` (one
    line), so that clients can read while the source is pulled; the whole
    source is then ingested (a progress bar on a terminal), and the server
    runs until SIGINT or SIGTERM, which stop it normally (status 0). The
    cache, and in disk mode its file, is removed on the way out.

    Parameters
    ----------
    source : str
        A Parquet, CSV/TSV or Arrow IPC file, or ``-`` for an Arrow IPC
        stream on ``stdin``.
    host, port : optional
        Where to listen; loopback and a free port by default.
    name : str, default "cache"
        The flight's name.
    token_env : str, optional
        The environment variable holding the bearer token every call needs.
    tls_cert, tls_key : str, optional
        PEM files: serve over TLS.
    endpoints : int, default 4
        The most batch ranges clients are offered.
    disk, disk_capacity, memory_capacity : optional
        Disk mode, as for ``batchcorder query``.
    quiet : bool, default False
        No progress bar, no messages but errors.
    stdin : binary file, optional
        Where ``-`` reads from.
    stdout : binary file, optional
        Where the location goes.
    stderr : text file, optional
        Where the messages go.

    Returns
    -------
    int
        0 once stopped by a signal.

    Raises
    ------
    CLIError
        For bad input: an unreadable source, a port that is taken, ...
    KeyboardInterrupt
        If interrupted before the whole source is read.
    """
    stdout, stderr = standard_streams(stdout, stderr)
    warn_about_cache_options(disk, disk_capacity, memory_capacity, stderr, quiet=quiet)
    token = _read_token(token_env)
    certificates = _read_tls(tls_cert, tls_key)
    if token is None and not _is_loopback(host):
        note(
            stderr,
            f"warning: serving on {host} without --token-env: anyone who can "
            "reach this port can read the data",
            quiet=quiet,
        )
    location = _listen_location(host, port, certificates is not None)
    with cached_source(source, stdin, disk, disk_capacity, memory_capacity) as (opened, cache):
        server = _start_server(cache, location, name, token, certificates, endpoints)
        try:
            stdout.write(f"{server.location}\n".encode())
            stdout.flush()
            if _ingest_unless_stopped(cache, opened, stderr, quiet=quiet):
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
    cache: StreamCache,
    location: str,
    name: str,
    token: str | None,
    certificates: list[tuple[bytes, bytes]] | None,
    endpoints: int,
) -> CacheServer:
    """:func:`batchcorder.flight.serve`, its failures to listen turned into :class:`CLIError`."""
    from batchcorder.flight import serve

    try:
        return serve(
            cache,
            location,
            name=name,
            token=token,
            tls_certificates=certificates,
            endpoints=endpoints,
        )
    except OSError as error:  # the port is in use, the host unknown, ...
        raise CLIError(os_reason(error)) from error
    except (pa.ArrowException, ValueError) as error:
        raise CLIError(f"cannot serve on {location}: {one_line(error)}") from error


def _ingest_unless_stopped(
    cache: StreamCache, opened: Source, stderr: TextIO, *, quiet: bool
) -> bool:
    """Ingest the whole source; False if stopped once it was read (a normal stop).

    A signal that lands after the last batch was pulled (clients may pull the
    source themselves), while the progress bar is being closed, stops the
    server as it would a moment later. Before that, it interrupts.
    """
    try:
        ingest(cache, opened, stderr, quiet=quiet)
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
