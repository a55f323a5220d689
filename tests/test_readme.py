"""The README: its Python examples run, each on its own, and it reads right on the package index."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
REPOSITORY = "https://github.com/batchcorder/batchcorder"


def text() -> str:
    return README.read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", text(), re.DOTALL)


def test_readme_has_examples() -> None:
    # A quick example (memory and disk mode) and the lifetime example; every
    # other example lives on a page of the documentation site.
    assert len(python_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(python_blocks())), ids=lambda i: f"block{i + 1}")
def test_readme_example_runs_on_its_own(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh namespace per block: a reader copying one example gets every
    # name it needs from that example.
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"readme_block_{index + 1}"}
    code = compile(python_blocks()[index], f"README.md python block {index + 1}", "exec")
    exec(code, namespace)
    assert Path.cwd() == tmp_path


def test_readme_starts_with_the_two_commands_then_pip_install() -> None:
    lines = text().splitlines()
    assert lines[0] == "# batchcorder"
    # The first thing after the title is the first code block: the clone's commands.
    assert lines[1:3] == ["", "```sh"]
    close = lines.index("```", 3)
    assert [line.split("#")[0].strip() for line in lines[3:close]] == [
        "python3 scripts/dev.py demo",
        "python3 scripts/dev.py test",
    ]
    # Then, before the first section, the command for users of the package.
    first_section = next(i for i, line in enumerate(lines) if line.startswith("## "))
    assert "pip install batchcorder" in lines[close:first_section]


def test_readme_links_work_from_the_package_index() -> None:
    # The README is the package's long description: a relative link would
    # point into the package index, not the repository.
    links = re.findall(r"\]\(([^)\s]+)\)", text())
    assert links
    for link in links:
        assert link.startswith(("https://", "#")), link
        if link.startswith("https://github.com/"):
            assert link.startswith(REPOSITORY), link


def test_readme_anchors_exist() -> None:
    headings = re.findall(r"^#+ (.+)$", text(), re.MULTILINE)
    anchors = {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings
    }
    for link in re.findall(r"\]\(#([^)]+)\)", text()):
        assert link in anchors, link


def test_readme_links_into_the_repository_name_files_that_exist() -> None:
    root = README.parent
    for path in re.findall(rf"\]\({re.escape(REPOSITORY)}/blob/main/([^)#]+)", text()):
        assert (root / path).is_file(), path


def test_readme_links_every_page_of_the_site() -> None:
    docs = README.parent / "docs"
    if not docs.is_dir():
        pytest.skip("docs/ is part of a clone, not of an installed package")
    linked = set(re.findall(rf"\]\({re.escape(REPOSITORY)}/blob/main/(docs/[^)#]+)", text()))
    pages = {page.relative_to(README.parent).as_posix() for page in docs.rglob("*.md")}
    assert pages - linked == set()
