"""The one table of engines: every adapter, every extra, Ray included.

Internal parts under test: ``batchcorder._engines``.
"""

from __future__ import annotations

from pathlib import Path

import tomllib

from batchcorder._engines import ENGINES

ROOT = Path(__file__).resolve().parents[1]


def test_every_adapter_module_is_in_the_table_and_the_table_names_only_adapters() -> None:
    adapters = {path.stem for path in (ROOT / "adapters").glob("*.py")}
    public = {name for name in adapters if not name.startswith("_")}
    assert {engine.adapter.rpartition(".")[2] for engine in ENGINES} == public
    assert "ray" in {engine.module for engine in ENGINES}


def test_every_engine_has_its_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert all(engine.extra in extras for engine in ENGINES)


def test_the_engines_register_names_the_sql_engines() -> None:
    assert [engine.module for engine in ENGINES if engine.registers] == [
        "duckdb",
        "polars",
        "datafusion",
    ]
