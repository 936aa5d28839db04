"""One error hierarchy for everything a user can get wrong or that can fail.

Every error that leaves SemQL is a :class:`SemQLError`, so callers (the REPL, the
benchmark runner, user code) can catch one type and print its message; the message
names the place of the problem (line/column, table, column, model path) so that no
traceback is needed to act on it.
"""

from __future__ import annotations


class SemQLError(Exception):
    """Base class of every error SemQL raises on purpose."""


def _with_place(message: str, sql: str, line: int, column: int) -> str:
    """``message`` followed by the query line at ``line`` and a caret under ``column``."""
    if not line:
        return message
    lines = sql.splitlines() or [""]
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    caret = " " * max(column - 1, 0) + "^"
    head, _, details = message.partition("\n")
    details = f"\n{details.strip()}" if details.strip() else ""
    return f"{head} (line {line}, column {column})\n  {text}\n  {caret}{details}"


class _LocatedError(SemQLError):
    """An error at a place in the query: keeps the 1-based ``line`` and ``column`` (0 when
    unknown) and renders the offending line with a caret under the column."""

    def __init__(self, message: str, sql: str = "", line: int = 0, column: int = 0):
        self.description = message
        self.sql = sql
        self.line = line
        self.column = column
        super().__init__(_with_place(message, sql, line, column))


class ParseError(_LocatedError):
    """The query text is not valid SQL in the SemQL dialect."""


class BindError(_LocatedError):
    """A name in the query does not resolve: table, column, function or argument.

    ``line``/``column`` point at the name in the query the user wrote, not in the SQL
    SemQL generated from it. ``offset`` is where in that query the LM call an argument
    error is about starts, set by the binder, which sees the call but not the query text
    (``semql.dialect.locate_bind_error`` turns it into line and column).
    """

    offset: int | None = None


class TypeInferenceError(SemQLError):
    """The output type of an LM call is contradictory or cannot be satisfied."""


class ModelError(SemQLError):
    """A model file is missing, unreadable or not a usable GGUF."""


class ExecutionError(SemQLError):
    """The query was valid but failed while running (in DuckDB or the LM runtime)."""


class ClusterError(ExecutionError):
    """A Ray cluster could not run the LM work: unreachable, no room for its actors, or
    every actor lost (``semql.connect(..., cluster=...)``)."""


class SafetyError(ExecutionError):
    """Refused by safe mode: the statement would read or write files, attach databases or
    load extensions (``semql.connect(..., safe=True)``)."""


class LimitExceeded(ExecutionError):
    """A per-query cap (``max_lm_calls``, ``max_prompt_tokens``, ``max_seconds``) was hit.

    The query stopped before its final statement ran, so no table changed; answers the
    LM gave so far are kept in the result cache, so a re-run with a higher cap pays only
    for the rest.
    """
