"""The documentation site: every Python block of every page runs, and the site's own checks.

Each page's ``python`` blocks run in order, in one fresh namespace per page
(a page is read top to bottom, so a later block may use an earlier block's
names), in a temporary working directory. A block that must not run is
preceded by a line ``<!-- not run: the reason -->``; any other fence that
looks like Python (``py``, ``python3``, ``pycon``) is refused, so no example
slips through unrun.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS = ROOT / "scripts" / "docs_hooks.py"

#: A fenced block: the line before it, its info string, its body.
_FENCE = re.compile(
    r"(?:^(?P<before>[^\n]*)\n)?^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```$", re.M | re.S
)
_NOT_RUN = re.compile(r"^<!-- not run: .+ -->$")
_PYTHON_LOOKALIKES = {"py", "python3", "pycon", "py3"}


def pages() -> list[Path]:
    if not DOCS.is_dir():
        return []
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> list[tuple[str, str, str]]:
    """Every fenced block of ``page``: (the line before it, its info string, its body)."""
    text = page.read_text(encoding="utf-8")
    return [
        (match["before"] or "", match["info"].strip(), match["body"])
        for match in _FENCE.finditer(text)
    ]


def runnable(page: Path) -> list[str]:
    return [
        body
        for before, info, body in blocks(page)
        if info == "python" and not _NOT_RUN.match(before.strip())
    ]


def page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


RUNNABLE_PAGES = [page for page in pages() if runnable(page)]


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    if not HOOKS.is_file():
        pytest.skip("scripts/docs_hooks.py is part of a clone, not of an installed package")
    spec = importlib.util.spec_from_file_location("batchcorder_docs_hooks", HOOKS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_has_runnable_pages() -> None:
    if not DOCS.is_dir():
        pytest.skip("docs/ is part of a clone, not of an installed package")
    assert len(RUNNABLE_PAGES) >= 10


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=page_id)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    ray_was_running = _ray_running()
    try:
        for number, body in enumerate(runnable(page), start=1):
            code = compile(body, f"{page_id(page)} python block {number}", "exec")
            exec(code, namespace)
    finally:
        # A page that starts Ray (the Ray Data guide) leaves it running, as a
        # reader's session would; the rest of the suite does not need it.
        if _ray_running() and not ray_was_running:
            sys.modules["ray"].shutdown()


def _ray_running() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_every_python_block_runs_or_says_why_not(page: Path) -> None:
    for before, info, _ in blocks(page):
        language = info.split()[0] if info else ""
        assert language not in _PYTHON_LOOKALIKES, (
            f"{page_id(page)}: a ```{info} block; write ```python (it runs) "
            "or put '<!-- not run: why -->' before a ```python block"
        )
        if _NOT_RUN.match(before.strip()):
            assert language == "python", f"{page_id(page)}: 'not run' marks a ```{info} block"


def test_command_line_help_is_rendered_from_the_parser(hooks: ModuleType) -> None:
    page = (DOCS / "how-to" / "cli.md").read_text(encoding="utf-8")
    markers = re.findall(r"^<!-- cli-help:\s*([\w-]*)\s*-->$", page, re.M)
    assert set(markers) >= {"", "query", "demo", "serve"}
    rendered = hooks.render_markers(page)
    assert "<!-- cli-help" not in rendered
    for command in ("query", "demo", "serve"):
        assert f"usage: batchcorder {command}" in rendered


def test_an_unknown_command_is_refused(hooks: ModuleType) -> None:
    with pytest.raises(ValueError, match="no subcommand 'nope'"):
        hooks.command_help("nope")


def test_docstring_roles_become_optional_cross_references(hooks: ModuleType) -> None:
    html = "a :class:<code>~batchcorder.StreamCache</code>, :func:<code>batchcorder.dataset</code>"
    assert hooks.link_sphinx_roles(html) == (
        'a <autoref identifier="batchcorder.StreamCache" optional><code>StreamCache</code>'
        '</autoref>, <autoref identifier="batchcorder.dataset" optional>'
        "<code>batchcorder.dataset</code></autoref>"
    )


def test_the_api_source_has_the_installed_layout(hooks: ModuleType, tmp_path: Path) -> None:
    tree = hooks.assemble_api_source(tmp_path / "api")
    assert (tree / "batchcorder" / "__init__.py").is_file()
    assert (tree / "batchcorder" / "adapters" / "duckdb.py").is_file()
    assert not list(tree.rglob("__pycache__"))


def test_the_benchmark_report_ends_with_the_analysis_it_is_made_from() -> None:
    # docs/benchmarks.md is generated (benchmarks/run.py --write-docs): the measured
    # tables, then benchmarks/analysis.md. Prose belongs in analysis.md, where the
    # next run keeps it.
    report = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    analysis = (ROOT / "benchmarks" / "analysis.md").read_text(encoding="utf-8")
    assert report.endswith(analysis)
