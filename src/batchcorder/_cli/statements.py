"""The statements in one SQL argument, told apart without an engine.

Polars and DataFusion expose no SQL splitter, so the command line carries a
small lexer: it knows the quoting of the three engines ('strings' with ''
escapes, E'strings' with backslash escapes, "identifiers", `identifiers`,
$tag$dollar quotes$tag$, -- and nested /* */ comments) well enough to find
the semicolons that end statements. DuckDB's own parser is used where it
is available (see :mod:`batchcorder._cli.engines`).
"""

from __future__ import annotations

import re

__all__ = ["first_keyword", "split_statements", "without_leading_comments"]

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _skip_quoted(sql: str, start: int, quote: str, backslash: bool = False) -> int:
    """The index after the quote that closes the one at ``start`` (doubled quotes escape)."""
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if backslash and char == "\\":
            index += 2
            continue
        if char == quote:
            if sql.startswith(quote, index + 1):
                index += 2
                continue
            return index + 1
        index += 1
    return len(sql)


def _skip_block_comment(sql: str, start: int) -> int:
    """The index after the ``*/`` closing the ``/*`` at ``start``; comments nest."""
    depth, index = 0, start
    while index < len(sql):
        if sql.startswith("/*", index):
            depth, index = depth + 1, index + 2
        elif sql.startswith("*/", index):
            depth, index = depth - 1, index + 2
            if depth == 0:
                return index
        else:
            index += 1
    return len(sql)


def _tokens(sql: str) -> list[tuple[int, int, str]]:
    """Split ``sql`` into ``(start, end, kind)`` spans of kind code, quoted, comment or ;."""
    spans: list[tuple[int, int, str]] = []
    index, code_start = 0, 0

    def code_until(end: int) -> None:
        if end > code_start:
            spans.append((code_start, end, "code"))

    while index < len(sql):
        char = sql[index]
        end = None
        kind = "quoted"
        if char in "'\"`":
            escaped = (
                char == "'"
                and index > 0
                and sql[index - 1] in "eE"
                and (index < 2 or not (sql[index - 2].isalnum() or sql[index - 2] == "_"))
            )
            end = _skip_quoted(sql, index, char, backslash=escaped)
        elif char == "$" and (tag := _DOLLAR_TAG.match(sql, index)) is not None:
            close = sql.find(tag.group(), tag.end())
            end = len(sql) if close < 0 else close + len(tag.group())
        elif sql.startswith("--", index):
            newline = sql.find("\n", index)
            end, kind = (len(sql) if newline < 0 else newline + 1), "comment"
        elif sql.startswith("/*", index):
            end, kind = _skip_block_comment(sql, index), "comment"
        elif char == ";":
            end, kind = index + 1, ";"
        if end is None:
            index += 1
            continue
        code_until(index)
        spans.append((index, end, kind))
        index = code_start = end
    code_until(len(sql))
    return spans


def split_statements(sql: str) -> list[str]:
    """The statements in ``sql``: split at semicolons outside quotes and comments.

    Pieces holding only blanks and comments (as after a final ``;``) are
    dropped; each statement keeps its comments but not its ``;``.

    Parameters
    ----------
    sql : str
        One SQL argument.

    Returns
    -------
    list of str
        The statements, stripped; empty when ``sql`` holds none.

    Examples
    --------
    >>> split_statements("SELECT 1; SELECT ';' AS s -- a comment; still one")
    ['SELECT 1', "SELECT ';' AS s -- a comment; still one"]
    >>> split_statements("SELECT 1;  -- the end")
    ['SELECT 1']
    >>> split_statements("SELECT $$a;b$$, E'it\\\\'s;', \\"c;\\" /* x; /* y; */ z; */")
    ['SELECT $$a;b$$, E\\'it\\\\\\'s;\\', "c;" /* x; /* y; */ z; */']
    >>> split_statements(" -- nothing here")
    []
    """
    statements: list[str] = []
    start, has_code = 0, False
    for span_start, span_end, kind in [*_tokens(sql), (len(sql), len(sql), ";")]:
        if kind == ";":
            if has_code:
                statements.append(sql[start:span_start].strip())
            start, has_code = span_end, False
        elif kind == "quoted" or (kind == "code" and sql[span_start:span_end].strip()):
            has_code = True
    return statements


def first_keyword(sql: str) -> str:
    """The first word of a statement, upper-cased, past comments and opening brackets.

    Examples
    --------
    >>> first_keyword("/* a view */ create view v as select 1")
    'CREATE'
    >>> first_keyword("(SELECT 1) UNION (SELECT 2)")
    'SELECT'
    >>> first_keyword("-- only a comment")
    ''
    """
    for start, end, kind in _tokens(sql):
        if kind == "comment":
            continue
        code = sql[start:end].lstrip(" \t\r\n(")
        if kind != "code" or not code:
            if kind == "code":
                continue
            return ""
        word = _WORD.match(code)
        return word.group().upper() if word else ""
    return ""


def without_leading_comments(sql: str) -> str:
    """``sql`` from its first word on: leading blanks and comments removed.

    Examples
    --------
    >>> without_leading_comments("  -- why\\n/* what */ CREATE VIEW v AS SELECT 1")
    'CREATE VIEW v AS SELECT 1'
    """
    for start, end, kind in _tokens(sql):
        if kind != "comment" and sql[start:end].strip():
            return sql[start:].lstrip()
    return ""
