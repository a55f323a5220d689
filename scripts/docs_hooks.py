"""MkDocs hooks of the documentation site (``hooks:`` in ``mkdocs.yml``).

- A page line ``<!-- cli-help: COMMAND -->`` is replaced by the ``--help``
  text of that command of the ``batchcorder`` parser (``<!-- cli-help: -->``
  for the top-level command), built when the site is built, so the
  command-line page cannot drift from the parser.
- The API reference reads the package's source as installed: ``src/batchcorder``
  with ``adapters/`` as ``batchcorder.adapters``. mkdocstrings finds a package
  in one directory, so the build assembles that tree in ``build/docs-api``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Where the installed layout of the package is assembled for mkdocstrings
#: (``paths:`` of its Python handler in ``mkdocs.yml``).
API_SOURCE = ROOT / "build" / "docs-api"

#: The width the help text is wrapped at, whatever terminal builds the site.
HELP_COLUMNS = 88

_MARKER = re.compile(r"^<!-- cli-help:\s*([\w-]*)\s*-->$", re.MULTILINE)
#: A Sphinx role of a numpydoc docstring as mkdocstrings renders it,
#: ``:class:<code>~pkg.Name</code>``; the page shows the code alone.
_SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj):<code>(~?)([\w.]+)</code>")


def command_help(command: str) -> str:
    """The ``--help`` text of ``batchcorder COMMAND`` (``""``: of ``batchcorder``).

    Parameters
    ----------
    command : str
        A subcommand of the parser, or ``""`` for the top-level command.

    Returns
    -------
    str
        What ``batchcorder COMMAND --help`` prints, wrapped at ``HELP_COLUMNS``.

    Raises
    ------
    ValueError
        If the parser has no such subcommand.
    """
    from batchcorder._cli.main import build_parser

    previous = os.environ.get("COLUMNS")
    # argparse wraps at $COLUMNS; fix it so the page is the same on every machine.
    os.environ["COLUMNS"] = str(HELP_COLUMNS)
    try:
        parser = build_parser()
        if not command:
            return parser.format_help()
        return _subparser(parser, command).format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    raise ValueError(f"the batchcorder parser has no subcommand {command!r}")


def render_markers(markdown: str) -> str:
    """Replace every ``<!-- cli-help: COMMAND -->`` line of ``markdown`` by a text block."""

    def block(match: re.Match[str]) -> str:
        return "```text\n" + command_help(match.group(1)).rstrip() + "\n```"

    return _MARKER.sub(block, markdown)


def assemble_api_source(target: Path = API_SOURCE) -> Path:
    """Copy the package's source into ``target`` in its installed layout.

    Returns
    -------
    Path
        ``target``, holding ``batchcorder/`` with ``batchcorder/adapters/``.
    """
    shutil.rmtree(target, ignore_errors=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = target / "batchcorder"
    shutil.copytree(ROOT / "src" / "batchcorder", package, ignore=skip)
    shutil.copytree(ROOT / "adapters", package / "adapters", ignore=skip)
    return target


def link_sphinx_roles(html: str) -> str:
    """Turn the Sphinx roles of rendered docstrings into links to the API reference.

    ``:class:<code>~a.B</code>`` becomes the code ``B`` (without ``~``: ``a.B``),
    linked to ``a.B`` where the reference documents it: mkdocs-autorefs
    resolves the ``optional`` cross-reference when the site is written, and
    leaves the plain code where there is no such page.
    """

    def reference(match: re.Match[str]) -> str:
        identifier = match.group(2)
        shown = identifier.rsplit(".", 1)[-1] if match.group(1) else identifier
        return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

    return _SPHINX_ROLE.sub(reference, html)


def on_page_content(html: str, **_: Any) -> str:
    """MkDocs event: docstrings' Sphinx roles become links (or plain code names)."""
    return link_sphinx_roles(html)


def on_startup(**_: Any) -> None:
    """MkDocs event: assemble the API source before mkdocstrings looks for it."""
    assemble_api_source()


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs event: expand the command-line markers of a page."""
    return render_markers(markdown)
