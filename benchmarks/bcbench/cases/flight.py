"""Arrow Flight: one and four client processes reading a served cache over loopback.

The server (``batchcorder.flight.serve``) runs in this worker; every client is
a process of its own, started once and connected once, that reads the whole
stream with ``do_get(ticket).read_all()`` when told to. The baseline is a
local replay of the same cache in this process, measured alternately in the
same run. The target is absolute, >= 1 GB/s per server (the clients' total);
it is turned into the local-replay ratio it amounts to in this run. The note
gives pyarrow's own Flight server over the same table, to the same clients:
the floor of the path on this machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pyarrow as pa

from bcbench import data
from bcbench.cases.common import CaseContext, case_row, row_or_error
from bcbench.impl import drain_stream
from bcbench.timing import Bench, Pair, measure_pair

TARGET_BYTES_PER_S = 1e9
"""Flight loopback target: 1 GB/s per server, all clients together."""

CLIENT_TIMEOUT_S = 300
"""Upper bound of one client's read, and of its start."""

_CLIENT = r"""
import json, sys, time
from pyarrow import flight

client = flight.connect(sys.argv[1])
ticket = flight.Ticket(b"{}")
options = flight.FlightCallOptions(timeout=float(sys.argv[2]))
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    table = client.do_get(ticket, options).read_all()
    print(json.dumps({"rows": table.num_rows}), flush=True)
    del table
"""


class _Clients:
    """``count`` client processes of the server at ``location``."""

    def __init__(self, location: str, count: int) -> None:
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-c", _CLIENT, location, str(CLIENT_TIMEOUT_S)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]
        for process in self.processes:
            self._reply(process, expect="ready")

    @staticmethod
    def _reply(process: subprocess.Popen[str], expect: str | None = None) -> str:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line or (expect is not None and line != expect):
            raise RuntimeError(f"a Flight client process failed (said {line!r})")
        return line

    def read_all(self, expected_rows: int) -> None:
        """Every client reads the whole stream once, concurrently; wait for all."""
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in self.processes:
            rows = json.loads(self._reply(process))["rows"]
            if rows != expected_rows:
                raise AssertionError(f"a Flight client read {rows} rows, not {expected_rows}")

    def close(self) -> None:
        for process in self.processes:
            try:
                if process.stdin is not None:
                    process.stdin.close()
                process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()


def _pyarrow_server(table: pa.Table) -> Any:
    """pyarrow's own Flight server sending ``table`` from C++: the floor of the path."""
    from pyarrow import flight

    class TableServer(flight.FlightServerBase):  # type: ignore[misc]
        def do_get(self, context: Any, ticket: Any) -> Any:
            return flight.RecordBatchStream(table)

    return TableServer("grpc://127.0.0.1:0")


def _fleet_median(location: str, count: int, total_rows: int, runs: int) -> float:
    """Median seconds for ``count`` client processes to read everything at once."""
    clients = _Clients(location, count)
    try:
        clients.read_all(total_rows)  # warm-up
        return statistics.median(_timed(lambda: clients.read_all(total_rows)) for _ in range(runs))
    finally:
        clients.close()


def run(ctx: CaseContext) -> list[dict[str, Any]]:
    """Measure Flight ``do_get`` by 1 and 4 client processes against a local replay.

    Parameters
    ----------
    ctx : CaseContext
        Implementation, plan and sizes.

    Returns
    -------
    list of dict
        One row per client count; none for the reference library, which has
        no Flight server.
    """
    if ctx.impl.is_reference:
        return []
    from batchcorder.flight import serve

    batches = data.make_batches(ctx.sizes.rows, ctx.sizes.big_batch_rows)
    data_bytes = data.batches_nbytes(batches)
    total_rows = sum(batch.num_rows for batch in batches)
    cache = ctx.impl.memory_cache(batches)
    rows: list[dict[str, Any]] = []
    table = pa.Table.from_batches(batches, schema=data.SCHEMA)
    with serve(cache) as server, _pyarrow_server(table) as floor_server:
        floor_location = f"grpc://127.0.0.1:{floor_server.port}"

        def flight_row(count: int, case_id: str, title: str) -> dict[str, Any]:
            pair = _measure(ctx, cache, server.location, count, total_rows)
            floor = _fleet_median(floor_location, count, total_rows, ctx.plan.runs)
            return _flight_row(case_id, title, count, pair, floor, batches)

        for count in (1, ctx.sizes.threads):
            case_id = f"flight.clients{count}"
            title = (
                f"Arrow Flight over loopback, {count} client process{'es' if count > 1 else ''}"
                f" each reading the whole cache (memory mode, {total_rows / 1e6:g}M rows, "
                f"{data_bytes / 1e6:.0f} MB)"
            )

            rows.append(row_or_error(case_id, title, partial(flight_row, count, case_id, title)))
    cache.close()
    return rows


def _flight_row(
    case_id: str, title: str, count: int, pair: Pair, floor: float, batches: list[pa.RecordBatch]
) -> dict[str, Any]:
    """The row of ``count`` Flight clients: ``pair`` against local replays, ``floor`` pyarrow's."""
    data_bytes = data.batches_nbytes(batches)
    moved = data_bytes * count
    rate = moved / pair.subject_median
    local_rate = moved / pair.baseline_median
    # The target as a ratio to this run's local replay: Flight at exactly
    # 1 GB/s takes moved / 1e9 seconds.
    limit = moved / TARGET_BYTES_PER_S / pair.baseline_median
    return case_row(
        case_id=case_id,
        title=title,
        baseline_label=f"local replay, {count}x from_stream(cache).read_all()",
        subject_label=f"{count} x do_get(ticket).read_all() in other processes",
        pair=pair,
        metric="time_ratio",
        target_op="<=",
        target_value=limit,
        target_text=f">= 1 GB/s per server (here <= {limit:.0f}x the local replay)",
        n_batches=len(batches),
        data_bytes=data_bytes,
        note=(
            f"`{case_id}`: {rate / 1e9:.2f} GB/s through the server "
            f"({count} client{'s' if count > 1 else ''}), against "
            f"{local_rate / 1e9:.0f} GB/s for a local (zero-copy) replay; "
            "pyarrow's own Flight server sending the same table from C++ "
            f"(RecordBatchStream), to the same clients right after, gives "
            f"{moved / floor / 1e9:.2f} GB/s."
        ),
        extra={
            "clients": count,
            "bytes_per_s": rate,
            "local_bytes_per_s": local_rate,
            "pyarrow_server_s": floor,
            "pyarrow_server_bytes_per_s": moved / floor,
        },
    )


def _local_replays(cache: Any, times: int) -> None:
    for _ in range(times):
        drain_stream(cache)


def _measure(ctx: CaseContext, cache: Any, location: str, count: int, total_rows: int) -> Pair:
    """Time ``count`` local replays against ``count`` client processes reading at once."""
    clients = _Clients(location, count)
    try:
        return measure_pair(
            Bench(partial(_local_replays, cache, count)),
            Bench(partial(clients.read_all, total_rows)),
            ctx.plan,
        )
    finally:
        clients.close()


def _timed(operation: Callable[[], object]) -> float:
    start = time.perf_counter()
    operation()
    return time.perf_counter() - start
