"""Ctrl-C and SIGTERM: exit status 130 or 143, one line, the cache's files removed.

A long query is known to be running once the statement before it has printed
its result (the command writes each result as soon as it is complete): the
tests wait for that line, not for a clock. Whether the engine stopped or the
watchdog ended the process shows in the message on standard error. One test
calls the watchdog's forced exit in a process of its own, to set up the race
it must survive.

Internal parts under test: ``batchcorder._cli.interrupts``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyarrow as pa
import pytest

#: What the watchdog says when it ends a process whose engine did not stop.
WATCHDOG = "the engine did not stop within"

#: Long enough that no engine finishes before the interrupt.
SLOW_SQL = (
    "SELECT sum(CAST(a.id AS DOUBLE) * b.id * c.id) FROM src a, src b, src c "
    "WHERE a.id + b.id + c.id > 5"
)


def wait_for_cache_file(folder: Path, process: subprocess.Popen[bytes]) -> list[Path]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and any(folder.iterdir()):
            return list(folder.iterdir())
        time.sleep(0.02)
    raise AssertionError(f"no cache file appeared in {folder}")


def start_long_query(files, cache_dir: Path, engine: str) -> subprocess.Popen[bytes]:
    """Start the slow statement after one that prints ``"running"``; return once it printed."""
    process = start(
        "query", files["parquet"], "SELECT 'running' AS state", SLOW_SQL, "--engine", engine,
        "--format", "csv", "--disk", cache_dir, "--disk-capacity", "1GiB",
    )  # fmt: skip
    assert process.stdout is not None
    printed = b""
    deadline = time.monotonic() + 60  # a bound for a broken command, not a race
    while b'"running"\n' not in printed and time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 1.0)[0]:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            printed += chunk
    assert printed == b'"state"\n"running"\n', printed
    assert cache_dir.is_dir() and any(cache_dir.iterdir())
    return process


def interrupt(process: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> tuple[int, str]:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr.decode()


def start(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchcorder", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_while_reading_standard_input(tmp_path: Path, signum: int, status: int):
    cache_dir = tmp_path / "cache"
    process = start(
        "query", "-", "SELECT count(*) FROM src", "--disk", cache_dir, "--disk-capacity", "1GiB"
    )
    assert process.stdin is not None
    table = pa.table({"x": list(range(1000))})
    writer = pa.ipc.new_stream(process.stdin, table.schema)
    writer.write_table(table)  # and then nothing more: the stream stays open
    process.stdin.flush()
    wait_for_cache_file(cache_dir, process)
    assert interrupt(process, signum) == (status, "batchcorder: interrupted\n")
    assert not cache_dir.exists()
    process.stdin.close()


@pytest.mark.parametrize("engine", ["duckdb", "datafusion"])
def test_ctrl_c_during_a_long_query(files, tmp_path: Path, engine: str):
    cache_dir = tmp_path / "cache"
    process = start_long_query(files, cache_dir, engine)
    status, stderr = interrupt(process)
    assert (status, stderr) == (130, "batchcorder: interrupted\n")
    assert not cache_dir.exists()


def test_sigterm_while_polars_will_not_stop(files, tmp_path: Path):
    """Polars ignores SIGTERM: the watchdog removes the cache file and ends the process."""
    cache_dir = tmp_path / "cache"
    process = start_long_query(files, cache_dir, "polars")
    status, stderr = interrupt(process, signal.SIGTERM)
    assert status == 143
    assert stderr.startswith("batchcorder: interrupted") and stderr.count("\n") == 1
    assert not cache_dir.exists()


@pytest.mark.parametrize(
    ("engine", "signum"), [("polars", signal.SIGTERM), ("datafusion", signal.SIGINT)]
)
def test_a_second_signal_exits_at_once(files, tmp_path: Path, engine: str, signum: int):
    cache_dir = tmp_path / "cache"
    process = start_long_query(files, cache_dir, engine)
    # Two signals sent at once may reach the process as one (the kernel keeps
    # one pending signal per number): send until the process is gone.
    for _ in range(100):  # a bound for a broken command
        process.send_signal(signum)
        try:
            process.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    assert stderr.decode().startswith("batchcorder: interrupted")
    assert WATCHDOG not in stderr.decode()  # the second signal ended it, not the deadline
    assert not cache_dir.exists()


def drain(master: int) -> bytes:
    """What is left to read on a pseudo-terminal whose process ended; closes it."""
    drawn = b""
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end is closed
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    return drawn


def screen(raw: bytes) -> list[str]:
    """The lines a terminal shows for ``raw``: ``\\r`` returns to the line's start, ``ESC[K`` erases."""
    lines = []
    for line in raw.decode(errors="replace").split("\r\n"):
        shown: list[str] = []
        for number, segment in enumerate(line.split("\r")):
            column = 0 if number else len(shown)
            parts = segment.split("\x1b[K")
            for index, part in enumerate(parts):
                if index:
                    del shown[column:]
                shown[column : column + len(part)] = part
                column += len(part)
        lines.append("".join(shown).rstrip())
    return lines


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_erases_the_progress_bar(presses: int):
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "batchcorder", "query", "-", "SELECT count(*) FROM src"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    assert process.stdin is not None
    table = pa.table({"x": list(range(10_000))})
    writer = pa.ipc.new_stream(process.stdin, table.schema)
    drawn = b""
    deadline = time.monotonic() + 30
    while b"ingesting" not in drawn and time.monotonic() < deadline:
        writer.write_table(table)  # a slow producer: the bar shows after half a second
        process.stdin.flush()
        if select.select([master], [], [], 0.05)[0]:
            drawn += os.read(master, 65536)
    assert b"ingesting" in drawn
    for _ in range(presses):  # a second Ctrl-C ends the process at once: erased too
        process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    drawn += drain(master)
    process.stdin.close()
    shown = [line for line in screen(drawn) if line]
    assert shown and all(line.startswith("batchcorder: interrupted") for line in shown), shown


#: The main thread half-way through erasing a bar ("\r" and spaces) when the
#: watchdog ends the process after a second Ctrl-C.
_ERASING_WHEN_FORCED = """
import os
from batchcorder._cli.interrupts import _force_exit
os.write(2, b"\\r" + b" " * 64)
_force_exit("interrupted again, exiting at once", 2)
"""


def test_a_forced_exit_says_why_on_a_line_of_its_own():
    master, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", _ERASING_WHEN_FORCED], stderr=terminal, stdout=subprocess.DEVNULL
    )
    os.close(terminal)
    assert process.wait(timeout=60) == 130
    drawn = drain(master)
    assert [line for line in screen(drawn) if line] == [
        "batchcorder: interrupted again, exiting at once"
    ]
