"""The installed ``batchcorder`` console script, ``python -m batchcorder``, and ``main``."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

import batchcorder
from batchcorder._cli.main import main

SCRIPT = "batchcorder.exe" if os.name == "nt" else "batchcorder"


def console_script() -> Path | None:
    """This interpreter's ``batchcorder`` script: beside ``sys.executable``, in its
    scheme's scripts directory, else the first on PATH."""
    for directory in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        if (directory / SCRIPT).is_file():
            return directory / SCRIPT
    found = shutil.which("batchcorder")
    return Path(found) if found else None


def declares_console_script() -> bool:
    """Whether an installed ``batchcorder`` distribution declares the console script."""
    try:
        distribution = importlib.metadata.distribution("batchcorder")
    except importlib.metadata.PackageNotFoundError:
        return False
    return any(
        entry.group == "console_scripts" and entry.name == "batchcorder"
        for entry in distribution.entry_points
    )


def test_installed_console_script(run, files):
    script = console_script()
    if script is None:
        if not declares_console_script() and "BATCHCORDER_EXPECT_INSTALL" not in os.environ:
            pytest.skip(
                "batchcorder is not installed (the suite runs from a source tree); "
                "pip install -e . installs the batchcorder command"
            )
        pytest.fail(
            f"batchcorder is installed but its console script is missing: not beside "
            f"{sys.executable}, not in {sysconfig.get_path('scripts')}, not on PATH"
        )
    result = run([script], "query", files["parquet"], "SELECT count(*) AS n FROM src", "-f", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.text) == {"n": 3000}


@pytest.mark.skipif(
    "BATCHCORDER_EXPECT_INSTALL" not in os.environ, reason="scripts/dev.py test sets PATH"
)
def test_dev_script_puts_this_environments_command_first_on_path():
    found = shutil.which("batchcorder")
    assert found is not None
    assert Path(found).parent == Path(sys.executable).parent


def test_python_dash_m(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.text.strip().startswith("batchcorder ")


def test_main_returns_statuses_in_process(capsys):
    assert main(["query", "no-such.parquet", "SELECT 1"]) == 2
    assert capsys.readouterr().err == (
        "batchcorder: error: cannot read 'no-such.parquet': No such file or directory\n"
    )
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("batchcorder ")


@pytest.mark.parametrize("command", [[], ["query"], ["demo"], ["serve"]])
def test_help_fits_a_terminal(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main([*command, "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and max(map(len, lines)) <= 80, max(lines, key=len)


def test_version_tells_this_build_from_pypi(capsys):
    assert main(["--version"]) == 0
    text = capsys.readouterr().out
    assert text == (
        f"batchcorder {batchcorder.__version__} "
        "(pure-Python build; PyPI's 0.1.3 is a different package)\n"
    )
