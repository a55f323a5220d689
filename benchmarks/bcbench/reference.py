"""Find or create the virtualenv that holds PyPI's ``batchcorder`` 0.1.3.

PyPI's ``batchcorder`` and ours share the import name, so the reference
cannot be installed next to our editable install: it lives in its own
virtualenv (``benchmarks/.reference-venv`` by default, git-ignored) and the
harness runs the same case modules there in a subprocess. The engines are
pinned to the versions of the interpreter running the harness, so both sides
use the same pyarrow, DuckDB, Polars and DataFusion.
"""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

from bcbench.impl import REFERENCE_VERSION
from bcbench.machine import PACKAGES, describe

DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".reference-venv"
"""Where ``--setup-reference`` creates the reference virtualenv."""


def venv_python(path: Path) -> Path:
    """Return the interpreter of the virtualenv at ``path``."""
    return path / "bin" / "python"


def find(explicit: str | None) -> Path | None:
    """Return the reference interpreter: ``explicit``, else the default venv's.

    Parameters
    ----------
    explicit : str, optional
        Value of ``--reference-python``.

    Returns
    -------
    Path or None
        ``None`` when neither exists.
    """
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise FileNotFoundError(f"--reference-python {explicit!r} does not exist")
        return path
    python = venv_python(DEFAULT_VENV)
    return python if python.exists() else None


def setup(path: Path = DEFAULT_VENV) -> Path:
    """Create the reference virtualenv and install batchcorder 0.1.3 into it.

    Parameters
    ----------
    path : Path
        Virtualenv directory.

    Returns
    -------
    Path
        Its interpreter.
    """
    if not venv_python(path).exists():
        print(f"creating {path}", flush=True)
        venv.create(path, with_pip=True)
    packages = describe()["packages"]
    pins = [f"{name}=={version}" for name, version in packages.items() if version != "absent"]
    missing = [name for name in PACKAGES if packages.get(name) == "absent"]
    if missing:
        print(f"warning: not installed here, so not pinned: {', '.join(missing)}", flush=True)
    command = [
        str(venv_python(path)),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        f"batchcorder=={REFERENCE_VERSION}",
        *pins,
    ]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    return venv_python(path)


def probe(python: Path | str, run_py: Path) -> dict[str, str]:
    """Return the batchcorder version and location seen by ``python``.

    Parameters
    ----------
    python : Path or str
        Interpreter to ask.
    run_py : Path
        The harness entry point (``run.py --probe`` prints what it imports).

    Returns
    -------
    dict
        ``{"version": ..., "location": ...}``, or ``{"error": ...}``.
    """
    completed = subprocess.run(
        [str(python), str(run_py), "--probe"],
        capture_output=True,
        text=True,
        check=False,
        cwd=run_py.parent,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr.strip()[-300:] or f"exit {completed.returncode}"}
    found: dict[str, str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return found


def check_reference(python: Path, run_py: Path) -> dict[str, str]:
    """Probe ``python`` and insist that it imports batchcorder 0.1.3.

    Raises
    ------
    RuntimeError
        If it cannot import batchcorder, or imports another version.
    """
    found = probe(python, run_py)
    if "error" in found:
        raise RuntimeError(f"{python} cannot import batchcorder: {found['error']}")
    if found["version"] != REFERENCE_VERSION:
        raise RuntimeError(
            f"{python} imports batchcorder {found['version']}, expected {REFERENCE_VERSION}"
        )
    return found
