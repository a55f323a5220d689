"""The installed package: public API, typing marker, adapters mapping, lazy engines."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import batchcorder


def test_public_api_matches_the_reference_names() -> None:
    for name in ("StreamCache", "StreamCacheReader", "CastingStreamCache"):
        assert name in batchcorder.__all__
        assert hasattr(batchcorder, name)


def test_package_is_typed() -> None:
    assert resources.files("batchcorder").joinpath("py.typed").is_file()


def test_adapters_are_part_of_the_installed_package() -> None:
    import batchcorder.adapters

    assert batchcorder.adapters.__name__ == "batchcorder.adapters"
    names = {entry.name for entry in resources.files("batchcorder.adapters").iterdir()}
    assert {"duckdb.py", "polars.py", "datafusion.py"} <= names


@pytest.mark.skipif(
    os.environ.get("BATCHCORDER_EXPECT_INSTALL") != "wheel", reason="only for a wheel install"
)
def test_suite_runs_against_the_installed_wheel() -> None:
    import batchcorder.adapters.duckdb

    for module in (batchcorder, batchcorder.adapters.duckdb):
        assert "site-packages" in Path(module.__file__ or "").parts, module.__file__


def test_importing_batchcorder_imports_no_engine() -> None:
    code = (
        "import sys, batchcorder, batchcorder.adapters\n"
        "loaded = [m for m in ('duckdb', 'polars', 'datafusion') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
