"""MkDocs hooks of the documentation site (``hooks:`` in ``mkdocs.yml``).

A page line ``<!-- cli-help: COMMAND -->`` is replaced by the ``--help`` text
of that command of the ``batchcorder`` parser (``<!-- cli-help: -->`` for the
top-level command), built when the site is built, so the command-line page
cannot drift from the parser.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

#: The width the help text is wrapped at, whatever terminal builds the site.
HELP_COLUMNS = 88

_MARKER = re.compile(r"^<!-- cli-help:\s*([\w-]*)\s*-->$", re.MULTILINE)


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


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs event: expand the command-line markers of a page."""
    return render_markers(markdown)
