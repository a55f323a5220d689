"""Description of the machine and software a run measured."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

PACKAGES = ("pyarrow", "duckdb", "polars", "datafusion", "numpy", "psutil")
"""Distributions whose versions are recorded."""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def describe() -> dict[str, Any]:
    """Return cores, RAM, CPU model, OS, Python and package versions.

    Returns
    -------
    dict
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_bytes": psutil.virtual_memory().total,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": {name: _version(name) for name in PACKAGES},
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def one_line(machine: dict[str, Any]) -> str:
    """Return ``machine`` as the one-line summary printed above tables."""
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    return (
        f"{machine['cpu_model']}, {machine['usable_cores']} cores, "
        f"{machine['ram_bytes'] / (1 << 30):.0f} GiB RAM, {machine['os']}, "
        f"{machine['python']}; {packages}"
    )
