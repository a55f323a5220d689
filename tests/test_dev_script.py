"""``scripts/dev.py``: the environment the test task runs pytest in."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

DEV = Path(__file__).resolve().parent.parent / "scripts" / "dev.py"


@pytest.fixture(scope="module")
def dev() -> ModuleType:
    if not DEV.is_file():
        pytest.skip("scripts/dev.py is part of a clone, not of an installed package")
    spec = importlib.util.spec_from_file_location("batchcorder_dev_script", DEV)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("wheel", "install"), [(False, "editable"), (True, "wheel")])
def test_the_environments_scripts_come_first_on_path(
    dev: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheel: bool, install: str
) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/local/bin", "/usr/bin"]))
    env = dev.pytest_environment(tmp_path / "venv", wheel)
    assert env["PATH"].split(os.pathsep) == [
        str(tmp_path / "venv" / dev.BIN),
        "/usr/local/bin",
        "/usr/bin",
    ]
    assert env["BATCHCORDER_EXPECT_INSTALL"] == install


def test_an_empty_path_gets_just_the_environment(
    dev: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PATH", raising=False)
    assert dev.pytest_environment(tmp_path, False)["PATH"] == str(tmp_path / dev.BIN)
