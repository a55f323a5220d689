"""An engine's panic is no bad input: one line naming the engine, exit status 1.

Rust engines raise a panic as ``pyo3_runtime.PanicException``, which is no
``Exception``. The panic here is real: Polars 2.1's streaming engine panics
on a window function over a ``LazyFrameResolver`` given a projection
narrower than its schema, which the test registers in place of the cache.
The command offers no way to register that frame, so these tests reach its
internal parts: the Polars session, ``engine_panic`` and ``main``'s runner.

Internal parts under test: ``batchcorder._cli.engines``, ``batchcorder._cli.errors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from polars.lazyframe.resolver import LazyFrameResolver

from batchcorder._cli.engines import PolarsEngine
from batchcorder._cli.errors import engine_panic
from batchcorder.errors import EnginePanicError

WINDOW = "SELECT id, sum(amount) OVER (PARTITION BY kind) AS total FROM src"


class _Resolver(LazyFrameResolver):  # type: ignore[misc]
    """The bare resolver Polars 2.1 panics over: the frame, narrowed to the projection."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def schema(self) -> Any:
        return self._frame.schema

    def resolve_lazyframe(self, *, projection: list[str] | None, **_: Any) -> pl.LazyFrame:
        lazy = self._frame.lazy()
        return lazy if projection is None else lazy.select(projection)


def _panicking_frame(table: pa.Table) -> pl.LazyFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return _Resolver(frame).lazy()


def _polars_panics() -> bool:
    frame = _panicking_frame(pa.table({"g": [1, 1], "x": [1, 2], "unused": [0, 0]}))
    try:
        frame.select(pl.col("x").sum().over("g")).collect()
    except BaseException as error:
        return engine_panic(error, "Polars") is not None
    return False


def test_a_polars_panic_exits_1_naming_polars(
    command: Any, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _polars_panics():
        pytest.skip("this Polars does not panic over a narrowed resolver")

    def register(self: PolarsEngine, table: str, cache: Any) -> None:
        batches = list(cache.reader())
        self.context.register(table, _panicking_frame(pa.Table.from_batches(batches)))

    monkeypatch.setattr(PolarsEngine, "register", register)
    result = command("query", "-e", "polars", files["parquet"], WINDOW)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("batchcorder: error: SQL statement 1 failed: Polars panicked: ")
    assert "index out of bounds" in lines[0]


@pytest.mark.parametrize("engine", ["polars", "duckdb", "datafusion"])
def test_a_window_over_the_cache_answers_as_over_the_table(
    command: Any,
    files: dict[str, Path],
    events: pa.Table,
    streams_reader: Any,
    engine: str,
) -> None:
    result = command("query", "-e", engine, "-f", "arrow", files["parquet"], WINDOW)
    assert result.returncode == 0, result.stderr
    (got,) = streams_reader(result.stdout)
    assert _sorted(got) == _sorted(_over_the_table(engine, events))


def _over_the_table(engine: str, events: pa.Table) -> pa.Table:
    """:data:`WINDOW` run by ``engine`` over the plain table."""
    if engine == "polars":
        return (
            pl.SQLContext(src=pl.from_arrow(events).lazy()).execute(WINDOW, eager=True).to_arrow()
        )
    if engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        connection.register("src", events)
        return connection.sql(WINDOW).to_arrow_table()
    import datafusion

    context = datafusion.SessionContext()
    context.register_record_batches("src", [events.to_batches()])
    return pa.Table.from_batches(context.sql(WINDOW).collect())


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def test_the_panic_is_named_and_chained() -> None:
    frame = _panicking_frame(pa.table({"g": [1, 1], "x": [1, 2], "unused": [0, 0]}))
    try:
        frame.select(pl.col("x").sum().over("g")).collect()
    except BaseException as error:
        panic = engine_panic(error, "Polars")
    else:
        pytest.skip("this Polars does not panic over a narrowed resolver")
    assert isinstance(panic, EnginePanicError) and isinstance(panic, RuntimeError)
    assert str(panic).startswith("Polars panicked: index out of bounds")


def test_a_panic_outside_a_statement_exits_1() -> None:
    import argparse
    import io

    from batchcorder._cli.main import _run_command

    def run(args: argparse.Namespace) -> int:
        raise pl.exceptions.PanicException("capacity overflow")

    errors = io.StringIO()
    status = _run_command(argparse.Namespace(run=run, debug=False), errors, None)
    assert status == 1
    assert errors.getvalue() == (
        "batchcorder: error: an engine panicked: capacity overflow "
        "(a bug of the engine; --debug shows the traceback)\n"
    )


def test_a_panic_while_registering_exits_1_naming_polars(command: Any, tmp_path: Path) -> None:
    # Polars 2.1 panics on a time zone written as an offset when it reads the schema.
    zoned = pa.table({"ts": pa.array([0], pa.timestamp("us", "+05:30"))})
    path = tmp_path / "zoned.arrow"
    with pa.ipc.new_file(path, zoned.schema) as writer:
        writer.write_table(zoned)
    result = command("query", "-e", "polars", path, "SELECT * FROM src")
    assert result.returncode == 1, result.stderr
    line = result.stderr.splitlines()[-1]
    assert line.startswith("batchcorder: error: Polars panicked: ")
    assert "unexpected" not in line
