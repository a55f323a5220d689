"""The package's modules import one another without a cycle, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "batchcorder"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules ``path`` imports anywhere (in functions, and for typing, too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules and name != "batchcorder")
    return found


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) - {name} for name, path in paths.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, as the modules along it; None if there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported)):
                return found
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_module_of_the_package_imports_itself_back() -> None:
    assert _cycle(_import_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# -- the seams between the parts -----------------------------------------------

ROOT = PACKAGE.parents[1]
#: The package's parts: its subpackages, and the core (the modules directly in it).
SUBPACKAGES = ("_scan", "_storage", "_flight", "_cli")
#: What an adapter may import of the package: the public API and the adapters' seam.
ADAPTER_IMPORTS = {"batchcorder", "batchcorder.errors", "batchcorder._adapter_kit"}


def _part(module: str) -> str:
    parts = module.split(".")
    if parts[:2] == ["batchcorder", "adapters"]:
        return "adapters"
    return parts[1] if len(parts) > 2 and parts[1] in SUBPACKAGES else "core"


def _imported_names(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from batchcorder… import name`` in ``path``."""
    return [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("batchcorder")
        for alias in node.names
        if node.module is not None
    ]


def _sources() -> dict[str, Path]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    for path in (ROOT / "adapters").glob("*.py"):
        modules[f"batchcorder.adapters.{path.stem}"] = path
    return modules


def test_no_private_name_crosses_a_part() -> None:
    crossing = [
        f"{module} imports {name} from {source}"
        for module, path in _sources().items()
        for source, name in _imported_names(path)
        if name.startswith("_") and name != "__version__" and _part(source) != _part(module)
    ]
    assert crossing == []


def test_adapters_import_only_the_public_api_and_their_seam() -> None:
    reaching = [
        f"{module} imports {source}"
        for module, path in _sources().items()
        if _part(module) == "adapters"
        for source, _ in _imported_names(path)
        if _part(source) != "adapters" and source not in ADAPTER_IMPORTS
    ]
    assert reaching == []


def test_tests_use_the_public_api_unless_they_say_which_internal_part_they_test() -> None:
    """A test module importing a private module names it in its docstring's
    ``Internal parts under test:`` line (the command's entry point, ``_cli.main``, is
    what the console script runs, so any command test may call it)."""
    silent = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree) or ""
        declared = docstring.partition("Internal parts under test:")[2]
        private = {
            source
            for source, _ in _imported_names(path)
            if any(part.startswith("_") for part in source.split(".")[1:])
            and source != "batchcorder._cli.main"
        }
        undeclared = sorted(module for module in private if module not in declared)
        if undeclared:
            silent.append(f"{path.relative_to(ROOT)}: {', '.join(undeclared)}")
    assert silent == []
