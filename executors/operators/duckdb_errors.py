"""DuckDB's exceptions as SemQL errors, keeping DuckDB's message and, where DuckDB ran
the user's own text, its line and caret."""

from __future__ import annotations

import re

import duckdb

from semql.errors import BindError, ExecutionError, ParseError, SafetyError, SemQLError

_EXCERPT_RE = re.compile(r"LINE (\d+): (.*)\n( *)\^")
# DuckDB lists every overload of a function no argument types matched (``+`` has 50); a
# few show the shape, the rest bury the message under a screenful
CANDIDATES_SHOWN = 4


def short_candidates(text: str) -> str:
    """DuckDB's message with its list of candidate functions cut to a few and a count."""
    head, marker, listed = text.partition("\n\tCandidate functions:\n")
    if not marker:
        return text
    lines = listed.splitlines()
    more = len(lines) - CANDIDATES_SHOWN
    if more <= 1:
        return text
    return head + marker + "\n".join(lines[:CANDIDATES_SHOWN]) + f"\n\t... and {more} more"


def duckdb_position(text: str, sql: str) -> tuple[int, int]:
    """DuckDB's ``LINE n: ...`` excerpt and caret as a 1-based (line, column) in ``sql``,
    or (0, 0). The excerpt may start with "..." (a long line cut); it is found in the line
    to place the caret."""
    match = _EXCERPT_RE.search(text)
    if match is None:
        return 0, 0
    line, excerpt = int(match.group(1)), match.group(2)
    caret = len(match.group(3)) - len(f"LINE {line}: ")
    lines = sql.splitlines()
    if not 0 < line <= len(lines):
        return 0, 0
    start = 0
    if excerpt.startswith("..."):
        found = lines[line - 1].find(excerpt[3:].rstrip(".").rstrip())
        if found < 0:
            return line, 0
        start = found - 3
    return line, max(start + caret + 1, 1)


def duckdb_error(err: duckdb.Error, sql: str = "", own: bool = False) -> SemQLError:
    """Map a DuckDB exception to the SemQL hierarchy, keeping DuckDB's message.

    ``own``: DuckDB ran the user's own text (plain SQL; LM markers are blanked to spaces,
    so positions hold): its line and caret are kept. Positions in SQL that SemQL
    generated mean nothing to the user; the front end locates names instead.
    """
    text = short_candidates(str(err))
    head, _, excerpt = text.partition("\n\nLINE ")  # DuckDB's excerpt of the SQL it ran
    line, col = duckdb_position(text, sql) if own else (0, 0)
    if isinstance(err, duckdb.ParserException):
        return ParseError(head.strip(), sql, line, col)
    if isinstance(err, (duckdb.BinderException, duckdb.CatalogException)):
        # In generated SQL the front end points at the name in the user's query instead.
        return BindError(head.strip(), sql, line, col)
    if isinstance(err, duckdb.PermissionException):
        return SafetyError(f"refused in safe mode: {text}")
    if "__" in sql + excerpt:  # an excerpt of SQL SemQL generated
        text = head.strip()
    return ExecutionError(text)
