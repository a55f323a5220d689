#!/usr/bin/env python3
"""The project's few commands, each in its own virtual environment.

    python3 scripts/dev.py demo     # install, then run `batchcorder demo`
    python3 scripts/dev.py test     # install with test extras, then run pytest
    python3 scripts/dev.py lint     # ruff check and ruff format --check
    python3 scripts/dev.py typecheck  # mypy --strict over the package as installed
    python3 scripts/dev.py bench    # the benchmark harness (pass --quick etc. after it)
    python3 scripts/dev.py docs     # the documentation site, mkdocs build --strict, into site/

Only Python 3.10+ with pip and venv is needed. ``--venv DIR`` picks the
environment (default ``.venv``); ``--pyarrow SPEC`` pins pyarrow in it
(``--pyarrow 18`` installs pyarrow 18.x); ``--wheel`` installs a built wheel
instead of an editable checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where ``typecheck`` assembles the package in its installed layout.
TYPECHECK_SOURCE = ROOT / "build" / "typecheck"
BIN = "Scripts" if os.name == "nt" else "bin"
TASKS = ("demo", "test", "lint", "typecheck", "bench", "docs")
#: The extra each task installs (the others: "test").
EXTRAS = {"demo": "all", "docs": "docs"}


def run(*command: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run(
        [str(part) for part in command], cwd=ROOT, env={**os.environ, **(env or {})}, check=True
    )


def environment(directory: Path, extras: str, pyarrow: str | None, wheel: bool) -> Path:
    """Create (or reuse) a virtual environment with the project installed."""
    python = directory / BIN / "python"
    if not python.exists():
        venv.create(directory, with_pip=True)
        run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    pins = (
        [f"pyarrow=={pyarrow}.*" if pyarrow.isdigit() else f"pyarrow{pyarrow}"] if pyarrow else []
    )
    if wheel:
        dist = directory / "dist"
        run(python, "-m", "pip", "install", "--quiet", "build")
        run(python, "-m", "build", "--wheel", "--outdir", dist, ROOT)
        built = sorted(dist.glob("batchcorder-*.whl"))[-1]
        run(python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", built)
        run(python, "-m", "pip", "install", "--quiet", f"{built}[{extras}]", *pins)
    else:
        run(python, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{extras}]", *pins)
    return python


def pytest_environment(directory: Path, wheel: bool) -> dict[str, str]:
    """The variables pytest runs with: the environment's scripts first on PATH.

    The console-script test runs the installed ``batchcorder`` command, which
    must be this environment's, not whatever else is on PATH.
    """
    path = os.environ.get("PATH", "")
    return {
        "PATH": os.pathsep.join([str(directory / BIN), *([path] if path else [])]),
        # The packaging tests check which install the suite imported.
        "BATCHCORDER_EXPECT_INSTALL": "wheel" if wheel else "editable",
    }


def typecheck(python: Path, *options: str) -> None:
    """``mypy --strict`` over every module of the package under its installed name.

    The adapters live in ``adapters/`` but are ``batchcorder.adapters``; the
    checker resolves imports by folder, so it checks the package assembled in
    ``build/typecheck`` as the documentation site does (the configuration is
    ``[tool.mypy]`` of pyproject.toml). Its messages name the files of the
    checkout, not the copies.
    """
    from docs_hooks import assemble_api_source

    source = assemble_api_source(TYPECHECK_SOURCE)
    command = [str(python), "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    command += ["--cache-dir", str(ROOT / "build" / "mypy-cache"), *options, "-p", "batchcorder"]
    print("+", " ".join(command), flush=True)
    checked = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(source)},
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(_in_checkout(checked.stdout, source))
    sys.stderr.write(_in_checkout(checked.stderr, source))
    if checked.returncode:
        raise subprocess.CalledProcessError(checked.returncode, command)


def _in_checkout(text: str, source: Path) -> str:
    """``text`` with the paths of the assembled copies turned into the checkout's own."""
    package = source / "batchcorder"
    for copies in (package, package.relative_to(ROOT)):
        text = text.replace(f"{copies / 'adapters'}{os.sep}", f"adapters{os.sep}")
        text = text.replace(f"{copies}{os.sep}", f"src{os.sep}batchcorder{os.sep}")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--pyarrow", help="pin pyarrow, e.g. 18 or '>=18,<19'")
    parser.add_argument("--wheel", action="store_true", help="install a built wheel")
    argv = sys.argv[1:]
    tasks = [index for index, arg in enumerate(argv) if arg in TASKS]
    # -h after the task is for the task's own command (pytest, the benchmarks).
    passed_help = [arg for arg in argv[tasks[0] :] if arg in ("-h", "--help")] if tasks else []
    if passed_help:
        argv = argv[: tasks[0]] + [arg for arg in argv[tasks[0] :] if arg not in passed_help]
    args, rest = parser.parse_known_args(argv)
    rest += passed_help

    extras = EXTRAS.get(args.task, "test")
    python = environment(args.venv.resolve(), extras, args.pyarrow, args.wheel)
    if args.task == "demo":
        run(args.venv.resolve() / BIN / "batchcorder", "demo", *rest)
    elif args.task == "test":
        run(python, "-m", "pytest", *rest, env=pytest_environment(args.venv.resolve(), args.wheel))
    elif args.task == "docs":
        # Strict: a broken link, a page missing from the nav or an API name
        # that does not resolve fails the build. Arguments after the task go
        # to mkdocs (e.g. --site-dir).
        run(python, "-m", "mkdocs", "build", "--strict", *rest, env={"NO_MKDOCS_2_WARNING": "1"})
    elif args.task == "typecheck":
        typecheck(python, *rest)
    elif args.task == "lint":
        run(python, "-m", "ruff", "check", ".")
        run(python, "-m", "ruff", "format", "--check", ".")
    else:
        run(python, str(ROOT / "benchmarks" / "run.py"), *rest)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode or 1)
