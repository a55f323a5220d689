"""The installed package: public API, typing marker, adapters mapping, lazy engines."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import batchcorder

ROOT = Path(__file__).resolve().parent.parent
URLS = {
    "Repository": "https://github.com/batchcorder/batchcorder",
    "Issues": "https://github.com/batchcorder/batchcorder/issues",
    "Changelog": "https://github.com/batchcorder/batchcorder/blob/main/CHANGELOG.md",
}


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


# -- the public namespace --------------------------------------------------------


def adapter_modules() -> list[str]:
    """Every public module of ``batchcorder.adapters``, found on disk."""
    import batchcorder.adapters

    return sorted(
        info.name
        for info in pkgutil.iter_modules(batchcorder.adapters.__path__)
        if not info.name.startswith("_")
    )


PUBLIC_MODULES = (
    "batchcorder",
    "batchcorder.adapters",
    *(f"batchcorder.adapters.{name}" for name in adapter_modules()),
)


def test_the_adapters_package_names_every_adapter() -> None:
    import batchcorder.adapters

    assert {"datafusion", "duckdb", "polars"} <= set(adapter_modules())
    assert sorted(batchcorder.adapters.__all__) == adapter_modules()


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_dir_lists_only_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert dir(module) == sorted(module.__all__)
    for public in module.__all__:
        if name == "batchcorder.adapters":
            # The package names its engine modules, which are imported on demand.
            importlib.import_module(f"{name}.{public}")
        assert hasattr(module, public)
    for leaked in ("annotations", "TYPE_CHECKING", "pa", "importlib"):
        assert leaked not in dir(module)


def test_top_level_api() -> None:
    for name in ("register", "scan", "dataset", "version", "__version__"):
        assert name in batchcorder.__all__
    assert callable(batchcorder.register) and callable(batchcorder.scan)


def test_version_is_the_packages_version() -> None:
    assert batchcorder.version() == batchcorder.__version__
    assert isinstance(batchcorder.version(), str)
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        assert f'version = "{batchcorder.version()}"' in pyproject.read_text(encoding="utf-8")


# -- license and metadata ----------------------------------------------------------


def load_pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_expression_with_its_file() -> None:
    # The TOML-table form makes setuptools warn (deprecated, an error from 2027).
    pyproject = load_pyproject()
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    (setuptools,) = [r for r in pyproject["build-system"]["requires"] if "setuptools" in r]
    match = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools.replace(" ", ""))
    assert match and int(match.group(1)) >= 77, setuptools  # SPDX license support
    for label, url in URLS.items():
        assert project["urls"][label] == url


def test_license_file_is_the_apache_license() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    for line in (
        "Apache License",
        "Version 2.0, January 2004",
        "http://www.apache.org/licenses/",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ):
        assert line in text
    assert len(text.split()) > 1500  # the full text, not a pointer to it


EXPECTED_INSTALL = os.environ.get("BATCHCORDER_EXPECT_INSTALL")


@pytest.mark.skipif(EXPECTED_INSTALL is None, reason="scripts/dev.py test has just installed it")
def test_installed_metadata_has_the_license_and_urls() -> None:
    metadata = importlib.metadata.metadata("batchcorder")
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert "License" not in metadata  # the deprecated free-text field
    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL") or [])
    for label, url in URLS.items():
        assert urls[label] == url


@pytest.mark.skipif(EXPECTED_INSTALL != "wheel", reason="only for a wheel install")
def test_the_wheel_ships_the_license_and_the_typing_marker() -> None:
    # The installed wheel's record, not an egg-info an editable install left
    # in the working directory (which is on sys.path under ``python -m pytest``).
    (distribution,) = [
        found
        for found in importlib.metadata.distributions(name="batchcorder")
        if any(str(path).endswith(".dist-info/RECORD") for path in found.files or [])
    ]
    files = {str(path): path for path in distribution.files or []}
    (license_file,) = [name for name in files if name.endswith(".dist-info/licenses/LICENSE")]
    installed = Path(distribution.locate_file(files[license_file]))
    assert installed.read_text(encoding="utf-8") == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "batchcorder/py.typed" in files
