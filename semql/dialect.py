"""The SemQL dialect front end: BlendSQL-style ``{{ LLMMap(...) }}`` on top of DuckDB SQL.

BlendSQL marks LM calls with double braces; SemQL accepts them and bare calls alike.
The braces are blanked out (replaced by spaces of the same length) rather than removed,
so every line/column sqlglot or DuckDB reports still points into the text the user typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError as SqlglotParseError
from sqlglot.errors import TokenError

from semql.planner.calls import CANONICAL_NAMES

from .errors import BindError, ParseError

_NAMES = "|".join(CANONICAL_NAMES.values())
_LM_CALL_RE = re.compile(rf"\b({_NAMES})\s*\(", re.IGNORECASE)
# What may follow '{{': an LM call, or another '{{' that the nesting check then reports.
_BLOCK_START_RE = re.compile(rf"\s*(?:({_NAMES})\s*\(|\{{\{{)", re.IGNORECASE)
# The name a DuckDB binder/catalog error is about, in the messages DuckDB writes.
_UNBOUND_NAME_RES = (
    re.compile(r'Referenced (?:column|table) "([^"]+)" not found'),
    re.compile(r'does not have a column named "([^"]+)"'),
    re.compile(r"with name (\S+?) does not exist"),
    re.compile(r"No function matches the given name and argument types '([^'(]+)\("),
)
# DuckDB names the pattern operators by their internal function names.
_OPERATOR_WORDS = {"~~": "LIKE", "!~~": "LIKE", "~~*": "ILIKE", "!~~*": "ILIKE", "~~~": "GLOB"}


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


_DOLLAR_TAG_RE = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def _string_end(sql: str, i: int) -> int:
    """Index just past the string or quoted identifier opening at ``sql[i]``.

    DuckDB's forms: '...' and "..." with doubled-quote escapes, E'...' with backslash
    escapes, and dollar-quoted $$...$$ / $tag$...$tag$ (no escapes at all).
    """
    n, ch = len(sql), sql[i]
    if ch == "$":
        tag = _DOLLAR_TAG_RE.match(sql, i).group(0)
        j = sql.find(tag, i + len(tag))
        if j < 0:
            raise _error_at("unterminated dollar-quoted string", sql, i)
        return j + len(tag)
    backslash = ch == "'" and i > 0 and sql[i - 1] in "eE" and not _word_before(sql, i - 1)
    j = i + 1
    while j < n:
        if backslash and sql[j] == "\\":
            j += 2
            continue
        if sql[j] == ch:
            if j + 1 < n and sql[j + 1] == ch:
                j += 2
                continue
            return j + 1
        j += 1
    kind = "string" if ch == "'" else "quoted identifier"
    raise _error_at(f"unterminated {kind}", sql, i)


def _word_before(sql: str, i: int) -> bool:
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_$")


def _code_spans(sql: str) -> list[_Span]:
    """Return the spans of ``sql`` that are code: not inside quotes or comments.

    Strings (see :func:`_string_end`), quoted identifiers, ``--`` line comments and
    ``/* */`` block comments are skipped, so that braces or function names inside them
    are never touched. ``$1`` (a parameter) is code; ``$$``/``$tag$`` opens a string.
    """
    spans: list[_Span] = []
    i, start, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"" or (ch == "$" and not _word_before(sql, i) and _DOLLAR_TAG_RE.match(sql, i)):
            spans.append(_Span(start, i))
            i = start = _string_end(sql, i)
        elif sql.startswith("--", i):
            spans.append(_Span(start, i))
            j = sql.find("\n", i)
            i = start = n if j < 0 else j
        elif sql.startswith("/*", i):
            spans.append(_Span(start, i))
            j = sql.find("*/", i + 2)
            if j < 0:
                raise _error_at("unterminated comment", sql, i)
            i = start = j + 2
        else:
            i += 1
    spans.append(_Span(start, n))
    return [s for s in spans if s.end > s.start]


def _line_col(sql: str, offset: int) -> tuple[int, int]:
    line = sql.count("\n", 0, offset) + 1
    col = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _error_at(message: str, sql: str, offset: int) -> ParseError:
    line, col = _line_col(sql, offset)
    return ParseError(message, sql, line, col)


def strip_braces(sql: str) -> str:
    """Blank out BlendSQL's ``{{`` and ``}}`` markers outside strings and comments.

    Single braces are DuckDB's struct literals (``{'a': {'b': 1}}``): they are counted,
    so the ``}}`` that closes two of them is not taken for a block's end; a block closes
    at ``}}`` only where every struct brace opened inside it is closed.
    Raises :class:`ParseError` at the first unbalanced or nested marker.
    """
    chars = list(sql)
    open_at: int | None = None
    depth = 0  # struct braces open
    block_depth = 0  # struct braces open where the block began
    for span in _code_spans(sql):
        i = span.start
        while i < span.end:
            two = sql[i : i + 2] if i + 1 < span.end else ""
            if two == "{{":
                if open_at is not None:
                    raise _error_at("nested '{{' inside an LM function block", sql, i)
                if not _BLOCK_START_RE.match(sql, i + 2):
                    raise _error_at(
                        "'{{ }}' must hold an LM function call: LLMMap, LLMQA or LLMJoin", sql, i
                    )
                open_at, block_depth = i, depth
            elif two == "}}" and open_at is not None and depth == block_depth:
                open_at = None
            elif two == "}}" and depth == 0:
                raise _error_at("'}}' without a matching '{{'", sql, i)
            else:
                if sql[i] == "{":
                    depth += 1
                elif sql[i] == "}" and depth > (block_depth if open_at is not None else 0):
                    depth -= 1
                i += 1
                continue
            chars[i] = chars[i + 1] = " "
            i += 2
    if open_at is not None:
        raise _error_at("'{{' is never closed with '}}'", sql, open_at)
    return "".join(chars)


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds nothing but whitespace and comments."""
    return all(not sql[s.start : s.end].strip() for s in _code_spans(sql))


def locate_bind_error(err: BindError, sql: str) -> BindError:
    """``err`` pointing at its place in ``sql``, the query the user wrote.

    An LM call's argument error points at the call (``err.offset``, from the parsed
    query, whose braces were blanked in place). DuckDB reports unknown columns, tables and
    functions against the SQL SemQL generated (LM arguments moved into subqueries), whose
    positions mean nothing to the user; the first use of the name in the user's code
    (outside strings and comments) is the place.
    """
    if err.line:
        return err
    if err.offset is not None and 0 <= err.offset < len(sql):
        return BindError(err.description, sql, *_line_col(sql, err.offset))
    name = next((m.group(1) for r in _UNBOUND_NAME_RES if (m := r.search(err.description))), None)
    if name is None:
        return err
    name = _OPERATOR_WORDS.get(name, name)
    word = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
    for span in _code_spans(sql):
        match = word.search(sql, span.start, span.end)
        if match:
            line, col = _line_col(sql, match.start())
            return BindError(err.description, sql, line, col)
    return err


def has_lm_call(sql: str) -> bool:
    """True when the SQL text (braces already stripped) names an LM function in code."""
    return any(_LM_CALL_RE.search(sql, s.start, s.end) for s in _code_spans(sql))


def parse(sql: str) -> exp.Expression:
    """Parse one statement of the dialect into a sqlglot expression (DuckDB dialect)."""
    text = strip_braces(sql)
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except SqlglotParseError as err:
        first = err.errors[0] if err.errors else {}
        line, col = first.get("line") or 0, first.get("col") or 0
        desc = first.get("description") or str(err)
        # sqlglot points at the end of the offending token; show its start.
        highlight = first.get("highlight") or ""
        if line and highlight:
            col = max(col - len(highlight) + 1, 1)
        raise ParseError(f"syntax error: {desc}", sql, line, col) from None
    except TokenError as err:
        raise ParseError(f"syntax error: {err}", sql) from None
    if not statements:
        raise ParseError("empty query", sql)
    if len(statements) > 1:
        raise ParseError("one statement at a time is supported with LM functions", sql)
    return statements[0]


def bind_params(ast: exp.Expression, params) -> exp.Expression:
    """Substitute ``?`` / ``$1`` / ``$name`` placeholders with literals before planning.
    A value no placeholder uses is an error, as it is in DuckDB: a miscounted list would
    otherwise shift every value after the slip without a word."""
    positional = list(params) if isinstance(params, (list, tuple)) else None
    named = params if isinstance(params, dict) else None
    counter = iter(range(len(positional or [])))
    used: set[int] = set()  # positions of the values placeholders took

    def value_for(node: exp.Expression):
        name = node.name if isinstance(node, exp.Placeholder) else node.this
        if name in ("", "?", None):
            if positional is None:
                raise BindError("positional parameter '?' needs params as a list")
            index = next(counter, None)
            if index is None:
                raise BindError("more '?' parameters than values in params")
        elif str(name).isdigit() and positional is not None:
            index = int(name) - 1
            if not 0 <= index < len(positional):
                raise BindError(f"no value for parameter ${name}: params has {len(positional)}")
        else:
            if named is None or name not in named:
                raise BindError(f"no value for parameter ${name}")
            return named[name]
        used.add(index)
        return positional[index]

    def transform(node):
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            return exp.convert(value_for(node))
        return node

    bound = ast.transform(transform, copy=False)
    if positional is not None and len(used) < len(positional):
        raise BindError(
            f"params has {len(positional)} values but the query uses {len(used)}: "
            "every value needs its placeholder"
        )
    return bound
