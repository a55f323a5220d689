"""The installed ``batchcorder`` console script, ``python -m batchcorder``, and ``main``."""

from __future__ import annotations

import json
import shutil

import pytest

from batchcorder._cli.main import main


def test_installed_console_script(run, files):
    script = shutil.which("batchcorder")
    if script is None:
        pytest.skip("the batchcorder console script is not installed (pip install -e .)")
    result = run([script], "query", files["parquet"], "SELECT count(*) AS n FROM src", "-f", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.text) == {"n": 3000}


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
