"""Infer the output type of an LM call from the SQL around it ("play by the type rules").

Explicit ``return_type`` / ``options`` / ``regex`` win. Otherwise the first matching
rule, looking at the expression the call sits in:

1. cast to a SQL type (``::INT``, ``CAST(... AS DATE)``, ``TRY_CAST``), or compared with a
   column of a known non-text SQL type -> that type (an array type -> a list of its items);
2. compared with a literal: TRUE/FALSE -> bool, 5 -> int, 3.5 -> float, 'x' -> str;
3. numeric context without a literal (ORDER BY, SUM/AVG, arithmetic, BETWEEN) -> float;
4. ``col IN f(...)`` -> a list (quantifier '+' unless given);
5. compared with (or IN against) a text column -> one of that column's distinct values;
   ``f(...) IN ('a', 'b')`` -> one of those literals;
6. a SELECT-list call whose alias is used in WHERE/HAVING/QUALIFY -> that predicate's type;
7. a boolean position (WHERE, AND/OR/NOT, JOIN ON, CASE WHEN) -> bool;
8. in a position that says nothing, a yes/no question ("Is ...?", "Does ...?", one question,
   no "or") -> bool;
9. otherwise free text.

An explicit type that contradicts a strong context is a TypeInferenceError naming both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from .type_names import parse_quantifier, type_from_name, type_from_sql_type
from .types import (
    MAX_OPTIONS,
    BoolType,
    DateType,
    FloatType,
    IntType,
    ListType,
    OptionsType,
    OutputType,
    RegexType,
    StrType,
)

ColumnLookup = Callable[[exp.Column], "ColumnFacts | None"]


@dataclass
class ColumnFacts:
    """What inference may know about a column: its SQL type and its distinct values."""

    sql_type: str
    distinct_values: Callable[[], tuple]


@dataclass
class Inferred:
    type: OutputType
    reason: str
    # True when neither the call's arguments nor its place chose the type (free text):
    # another use of the same call that does say what it wants decides for both.
    fallback: bool = False


class InferenceConflict(ValueError):
    """Explicit and contextual types disagree; the planner turns it into TypeInferenceError."""


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)
_NUMERIC_PARENTS = (
    exp.Sum, exp.Avg, exp.Stddev, exp.Variance, exp.Add, exp.Sub, exp.Mul, exp.Div,
    exp.Between, exp.Ordered, exp.Round, exp.Abs,
)  # fmt: skip
_YES_NO = re.compile(
    r"\s*(is|are|am|was|were|does|do|did|has|have|had|can|could|will|would|should|shall"
    r"|may|might|must)\b[^?]*\?\s*",
    re.IGNORECASE,
)
_BOOLEAN_PARENTS = (exp.Where, exp.Having, exp.Qualify, exp.And, exp.Or, exp.Not, exp.Xor)


def _parent(node: exp.Expression) -> exp.Expression | None:
    p = node.parent
    while isinstance(p, exp.Paren):
        node, p = p, p.parent
    return p


def _self_in(node: exp.Expression, parent: exp.Expression) -> exp.Expression:
    """The child of ``parent`` on the path to ``node`` (skipping parentheses)."""
    while node.parent is not parent and node.parent is not None:
        node = node.parent
    return node


def _literal_type(lit: exp.Expression) -> OutputType | None:
    if isinstance(lit, exp.Boolean):
        return BoolType()
    if isinstance(lit, exp.Neg):
        lit = lit.this
    if isinstance(lit, exp.Literal):
        if lit.is_string:
            return StrType()
        return IntType() if lit.is_int else FloatType()
    return None


def _column_type(col: exp.Expression, lookup: ColumnLookup) -> tuple[OutputType, str] | None:
    if not isinstance(col, exp.Column):
        return None
    facts = lookup(col)
    if facts is None:
        return None
    typed = type_from_sql_type(facts.sql_type)
    if typed is not None:
        return typed, f"compared with column {col.sql()} ({facts.sql_type})"
    values = tuple(v for v in facts.distinct_values() if v is not None)
    if not values:
        return StrType(), f"compared with empty text column {col.sql()}"
    if len(values) > MAX_OPTIONS:
        return StrType(), f"compared with text column {col.sql()} (too many values for options)"
    return OptionsType(values), f"one of the distinct values of {col.sql()}"


# The most digits that always fit each SQL integer type (INTEGER holds every 9-digit
# number, not every 10-digit one), and whether it holds negative numbers
_INT_RANGES = {
    "TINYINT": (2, True), "UTINYINT": (2, False), "SMALLINT": (4, True),
    "USMALLINT": (4, False), "MEDIUMINT": (6, True), "UMEDIUMINT": (6, False),
    "INT": (9, True), "UINT": (9, False), "BIGINT": (18, True), "UBIGINT": (18, False),
}  # fmt: skip


_TIMESTAMPS = tuple(
    getattr(exp.DataType.Type, name)
    for name in ("TIMESTAMP", "TIMESTAMPNTZ", "DATETIME", "TIMESTAMPTZ", "TIMESTAMP_S",
                 "TIMESTAMP_MS", "TIMESTAMP_NS")
)  # fmt: skip


def _ungrammared(to: exp.DataType) -> bool:
    """A cast target no answer grammar produces (not text, not a grammar's own type):
    free text would fail the cast on every row."""
    if to.is_type(exp.DataType.Type.ARRAY) and to.expressions:
        return _ungrammared(to.expressions[0])
    binary = (exp.DataType.Type.VARBINARY, exp.DataType.Type.BINARY)
    return not to.is_type(*exp.DataType.TEXT_TYPES, *binary)


def _decimal_type(to: exp.DataType) -> FloatType:
    """``DECIMAL(p, s)`` (DuckDB's default ``DECIMAL(18, 3)``): p - s digits before the
    point and at most s after it (at most 6), and no more than 15 in all: the answer
    reaches the cast as a DOUBLE, which holds 15 digits exactly and rounds longer numbers
    (999999999999999.999 becomes 1e15, past DECIMAL(18, 3))."""
    sizes = [int(e.this.this) for e in to.expressions] or [18, 3]
    precision, scale = (sizes + [0])[:2]
    frac = min(scale, 6)
    return FloatType(min(precision - scale, 15 - frac), frac)


def _cast_type(to: exp.DataType) -> OutputType | None:
    """The output type a cast target asks for (None for text and types with no grammar):
    the model then writes a value the cast accepts, instead of words it rejects."""
    if to.is_type(exp.DataType.Type.ARRAY) and to.expressions:
        inner = to.expressions[0]
        text = inner.is_type(*exp.DataType.TEXT_TYPES)
        item = StrType(80) if text else _cast_type(inner)
        # a list's items are numbers, booleans or strings (ListType): no date grammar
        return None if item is None or isinstance(item, DateType) else ListType(item, 1)
    if to.is_type(*exp.DataType.INTEGER_TYPES):
        digits, signed = _INT_RANGES.get(to.this.name, (18, True))
        return IntType(digits, signed)
    if to.is_type(exp.DataType.Type.DECIMAL):
        return _decimal_type(to)
    if to.is_type(*_TIMESTAMPS):
        return DateType(time=True)
    if to.is_type(*exp.DataType.REAL_TYPES):
        return FloatType()
    return type_from_sql_type(to.this.value)


def context_type(node: exp.Expression, lookup: ColumnLookup, _depth: int = 0) -> Inferred | None:
    """The type the SQL around ``node`` expects, or None when it says nothing."""
    parent = _parent(node)
    if parent is None:
        return None
    if isinstance(parent, exp.Cast):  # TryCast too
        typed = _cast_type(parent.to)
        if typed is None and not isinstance(parent, exp.TryCast) and _ungrammared(parent.to):
            raise ValueError(
                f"no answer grammar fits a cast to {parent.to.sql('duckdb')}, so the answers "
                "would fail it; cast to text, a number, DATE or TIMESTAMP, or use TRY_CAST "
                "(NULL where an answer does not fit)"
            )
        return None if typed is None else Inferred(typed, f"cast to {parent.to.sql('duckdb')}")
    if isinstance(parent, _COMPARISONS):
        mine = _self_in(node, parent)
        other = parent.expression if mine is parent.this else parent.this
        while isinstance(other, exp.Paren):
            other = other.this
        by_col = _column_type(other, lookup)
        if by_col:
            return Inferred(*by_col)
        lit = _literal_type(other)
        if lit is not None:
            return Inferred(lit, f"compared with {other.sql()}")
        if not isinstance(parent, (exp.EQ, exp.NEQ, exp.NullSafeEQ)):
            return Inferred(FloatType(), "ordered comparison")
        return None
    if isinstance(parent, exp.In):
        mine = _self_in(node, parent)
        if mine is parent.this:
            values = [_literal_value(e) for e in parent.expressions]
            if values and all(v is not _NOT_LITERAL for v in values):
                return Inferred(OptionsType(tuple(values)), "IN list of literals")
            return None
        item = _column_type(parent.this, lookup)
        if item:
            return Inferred(ListType(item[0], 1), f"IN, items {item[1]}")
        return Inferred(ListType(StrType(80), 1), f"{parent.this.sql()} IN a list")
    if isinstance(parent, exp.If) and _self_in(node, parent) is parent.this:
        return Inferred(BoolType(), "CASE WHEN condition")
    if isinstance(parent, exp.Join) or isinstance(parent, _BOOLEAN_PARENTS):
        if (
            isinstance(parent, exp.Not)
            or not isinstance(parent, exp.Join)
            or (_self_in(node, parent) is parent.args.get("on"))
        ):
            return Inferred(BoolType(), "boolean position")
    if isinstance(parent, _NUMERIC_PARENTS):
        return Inferred(FloatType(), f"numeric context ({parent.key.upper()})")
    if isinstance(parent, exp.Alias) and _depth == 0:
        return _alias_use_type(parent, lookup)
    return None


_NOT_LITERAL = object()


def _literal_value(e: exp.Expression):
    if isinstance(e, exp.Boolean):
        return bool(e.this)
    neg = isinstance(e, exp.Neg)
    if neg:
        e = e.this
    if isinstance(e, exp.Literal):
        if e.is_string:
            return e.this if not neg else _NOT_LITERAL
        value = int(e.this) if e.is_int else float(e.this)
        return -value if neg else value
    return _NOT_LITERAL


def _alias_use_type(alias: exp.Alias, lookup: ColumnLookup) -> Inferred | None:
    select = alias.parent
    if not isinstance(select, exp.Select):
        return None
    name = alias.alias
    for clause in ("where", "having", "qualify"):
        part = select.args.get(clause)
        if part is None:
            continue
        for col in part.find_all(exp.Column):
            if not col.table and col.name == name:
                found = context_type(col, lookup, _depth=1)
                if found:
                    return Inferred(found.type, f"alias {name}: {found.reason}")
    return None


def _explicit_type(kwargs: dict) -> tuple[OutputType | None, str]:
    """The type a call's arguments name, if any; one whose grammar xgrammar rejects (a
    malformed regex, a JSON schema it cannot compile) fails here with xgrammar's reason,
    at planning, not as an internal error once the query runs."""
    explicit, reason = _named_type(kwargs)
    if explicit is not None and ("regex" in kwargs or "return_type" in kwargs):
        try:  # imported here: xgrammar brings torch, which planning alone does not need
            from .compile import to_xgrammar
        except ImportError:  # the runtime names the missing install (ModelError)
            return explicit, reason
        to_xgrammar(explicit.spec())  # ValueError naming the grammar's problem
    return explicit, reason


def _named_type(kwargs: dict) -> tuple[OutputType | None, str]:
    quantifier = kwargs.get("quantifier")
    if kwargs.get("options") is not None:
        base: OutputType = OptionsType(tuple(kwargs["options"]))
        reason = "options="
    elif kwargs.get("regex") is not None:
        if quantifier:  # a list's items are plain JSON strings (ListType): the pattern would
            # bind nothing, so the call would answer other than the user asked
            raise ValueError(
                "regex= cannot be combined with quantifier= (a list's items do not follow "
                "the pattern); ask for one value, or drop regex="
            )
        base, reason = RegexType(kwargs["regex"]), "regex="
    elif kwargs.get("return_type") is not None:
        return type_from_name(str(kwargs["return_type"]), quantifier), "return_type="
    else:
        if quantifier:
            lo, hi = parse_quantifier(quantifier)
            return ListType(StrType(80), lo, hi), "quantifier="
        return None, ""
    if quantifier:
        lo, hi = parse_quantifier(quantifier)
        return ListType(base, lo, hi), reason + " with quantifier="
    return base, reason


def _compatible(explicit: OutputType, ctx: OutputType) -> bool:
    if isinstance(ctx, ListType):
        return isinstance(explicit, ListType) or not isinstance(explicit, ListType)
    if isinstance(explicit, ListType):
        return False
    kinds = {
        BoolType: lambda t: (
            isinstance(t, BoolType) or (isinstance(t, OptionsType) and t.duckdb_type == "BOOLEAN")
        ),
        IntType: lambda t: (
            isinstance(t, (IntType, FloatType))
            or (isinstance(t, OptionsType) and t.duckdb_type in ("BIGINT", "DOUBLE"))
        ),
        FloatType: lambda t: (
            isinstance(t, (IntType, FloatType))
            or (isinstance(t, OptionsType) and t.duckdb_type in ("BIGINT", "DOUBLE"))
        ),
        DateType: lambda t: isinstance(t, DateType),
    }
    check = kinds.get(type(ctx))
    return True if check is None else check(explicit)


def _probability(ctx: Inferred, how: str) -> Inferred:
    """A yes/no call where the SQL wants a number: the calibrated probability of yes (a
    count of decisions moves with the wording; an expected count much less)."""
    return Inferred(BoolType(expected=True), f"{how}, {ctx.reason}: probability of yes")


def is_yes_no(question: str) -> bool:
    """A single question a yes or no answers ("Is it X or Y?" is not one): untyped, a
    model answers it with a sentence, which no one can filter or count on."""
    return bool(_YES_NO.fullmatch(question)) and not re.search(r"\bor\b", question, re.I)


def infer_type(
    call: exp.Expression, kwargs: dict, lookup: ColumnLookup, call_name: str, question: str = ""
) -> Inferred:
    """The output type of one LM call. ``kwargs`` holds evaluated keyword arguments."""
    explicit, how = _explicit_type(kwargs)
    ctx = context_type(call, lookup)
    if explicit is None:
        if ctx is None and is_yes_no(question):
            return Inferred(BoolType(), "a yes/no question")
        if ctx is None:
            return Inferred(StrType(), "free text (no typed context)", fallback=True)
        if isinstance(ctx.type, FloatType) and is_yes_no(question):
            return _probability(ctx, "a yes/no question")
        return ctx
    if isinstance(explicit, BoolType) and ctx is not None and isinstance(ctx.type, FloatType):
        return _probability(ctx, how)
    if ctx is not None and not _compatible(explicit, ctx.type):
        raise InferenceConflict(
            f"{call_name}: explicit type {explicit} ({how}) conflicts with {ctx.type} "
            f"expected by the query ({ctx.reason})"
        )
    if (
        isinstance(explicit, OptionsType)
        and explicit.numeric
        and ctx is not None
        and isinstance(ctx.type, FloatType)
    ):
        return Inferred(
            OptionsType(explicit.values, expected=True),
            f"{how} in {ctx.reason}: expected value of the scale",
        )
    if ctx is not None and isinstance(ctx.type, ListType) and not isinstance(explicit, ListType):
        return Inferred(
            ListType(explicit, ctx.type.min_items, ctx.type.max_items), f"{how} inside {ctx.reason}"
        )
    return Inferred(explicit, how)
