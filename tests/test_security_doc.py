"""docs/security.md: its Python recipes run, each on its own, with the certificates it makes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"

#: Seconds the certificate commands may take.
TIMEOUT = 60


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_recipes() -> None:
    assert len(blocks("python")) >= 4


@pytest.fixture
def certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page's own openssl commands, run in a fresh directory."""
    if shutil.which("openssl") is None or shutil.which("sh") is None:
        pytest.skip("needs openssl and sh to make the page's certificates")
    (script,) = [block for block in blocks("sh") if "openssl req" in block]
    subprocess.run(
        ["sh", "-e", "-c", script], cwd=tmp_path, check=True, capture_output=True, timeout=TIMEOUT
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("index", range(len(blocks("python"))), ids=lambda i: f"block{i + 1}")
def test_recipe_runs_on_its_own(index: int, certificates: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"security_block_{index + 1}"}
    code = compile(blocks("python")[index], f"security.md python block {index + 1}", "exec")
    exec(code, namespace)
