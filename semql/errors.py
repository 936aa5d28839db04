"""One error hierarchy for everything a user can get wrong or that can fail.

Every error that leaves SemQL is a :class:`SemQLError`, so callers (the REPL, the
benchmark runner, user code) can catch one type and print its message; the message
names the place of the problem (line/column, table, column, model path) so that no
traceback is needed to act on it.
"""

from __future__ import annotations


class SemQLError(Exception):
    """Base class of every error SemQL raises on purpose."""


class ParseError(SemQLError):
    """The query text is not valid SQL in the SemQL dialect.

    Carries the 1-based ``line`` and ``column`` of the problem and renders the
    offending line with a caret under the column.
    """

    def __init__(self, message: str, sql: str = "", line: int = 0, column: int = 0):
        self.description = message
        self.sql = sql
        self.line = line
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.line:
            return self.description
        lines = self.sql.splitlines() or [""]
        text = lines[self.line - 1] if 0 < self.line <= len(lines) else ""
        caret = " " * max(self.column - 1, 0) + "^"
        return f"{self.description} (line {self.line}, column {self.column})\n  {text}\n  {caret}"


class BindError(SemQLError):
    """A name in the query does not resolve: table, column, function or argument."""


class TypeInferenceError(SemQLError):
    """The output type of an LM call is contradictory or cannot be satisfied."""


class ModelError(SemQLError):
    """A model file is missing, unreadable or not a usable GGUF."""


class ExecutionError(SemQLError):
    """The query was valid but failed while running (in DuckDB or the LM runtime)."""


class SafetyError(ExecutionError):
    """Refused by safe mode: the statement would read or write files, attach databases or
    load extensions (``semql.connect(..., safe=True)``)."""


class LimitExceeded(ExecutionError):
    """A per-query cap (``max_lm_calls``, ``max_prompt_tokens``, ``max_seconds``) was hit.

    The query stopped before its final statement ran, so no table changed; answers the
    LM gave so far are kept in the result cache, so a re-run with a higher cap pays only
    for the rest.
    """
