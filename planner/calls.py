"""Binding of LM function calls: arguments checked, evaluated and typed.

A call in the AST (``LLMMap('q', t.col, options=('a','b'))``) becomes an :class:`LMCall`
with its question, the row fields it reads, its evaluated keyword arguments and its
output type. Identical calls (same SQL text) bind to one LMCall, so a call used in the
SELECT list and again in WHERE or ORDER BY runs once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from semql.errors import BindError
from semql.grammar.types import OutputType

from .retrieval import Retrieval

ALLOWED_KWARGS = {
    "LLMMAP": (
        "options",
        "return_type",
        "regex",
        "quantifier",
        "examples",
        "accuracy",
        "calibration",
        "context",
        "k",
        "retrieval",
    ),
    "LLMQA": (
        "options",
        "return_type",
        "regex",
        "quantifier",
        "examples",
        "context",
        "calibration",
        "k",
        "retrieval",
    ),
    "LLMJOIN": ("join_criteria", "examples"),
}
CANONICAL_NAMES = {"LLMMAP": "LLMMap", "LLMQA": "LLMQA", "LLMJOIN": "LLMJoin"}


def is_lm_call(node: exp.Expression) -> bool:
    """True for an (anonymous) function call named like an LM function."""
    return isinstance(node, exp.Anonymous) and str(node.this).upper() in CANONICAL_NAMES


@dataclass
class Field:
    """One value an LM call reads per row, with the name it gets in the prompt."""

    name: str
    expr: exp.Expression


@dataclass(eq=False)
class LMCall:
    id: int
    function: str
    key: str
    nodes: list[exp.Expression]
    question: str
    fields: list[Field]
    kwargs: dict
    context: list[exp.Expression] = field(default_factory=list)
    retrieval: Retrieval | None = None
    output: OutputType | None = None
    type_reason: str = ""

    @property
    def label(self) -> str:
        """Short text for EXPLAIN and errors: the call as written, cut to a line."""
        text = self.key if len(self.key) <= 90 else self.key[:87] + "..."
        return text

    @property
    def examples(self) -> list[tuple]:
        return list(self.kwargs.get("examples") or [])

    @property
    def prompt_names(self) -> list[str]:
        """The field names of its prompts: its row fields, then an LLMMap's retrieved
        ``context``."""
        names = [f.name for f in self.fields]
        return names + ["context"] if self.retrieval is not None and self.fields else names


def _name_of(node: exp.Expression) -> str:
    return CANONICAL_NAMES[str(node.this).upper()]


def split_arguments(node: exp.Anonymous) -> tuple[list[exp.Expression], dict[str, exp.Expression]]:
    """Positional and keyword arguments. ``k=v``, ``k := v`` and ``k => v`` are keywords."""
    fn = _name_of(node)
    allowed = ALLOWED_KWARGS[fn.upper()]
    positional: list[exp.Expression] = []
    keywords: dict[str, exp.Expression] = {}
    for arg in node.expressions:
        key = None
        if isinstance(arg, exp.EQ) and isinstance(arg.this, exp.Column) and not arg.this.table:
            # name=value: a keyword when the name is one, or when the value is a literal
            # (a typo such as colour='red' must not silently become a row field).
            literal = isinstance(arg.expression, (exp.Literal, exp.Tuple, exp.Boolean))
            if arg.this.name.lower() in _ALL_KWARGS or (literal and positional):
                key = arg.this.name.lower()
        elif isinstance(arg, (exp.PropertyEQ, exp.Kwarg)):
            key = arg.this.name.lower()
        if key is None:
            if keywords:
                raise BindError(f"{fn}: positional argument {arg.sql()} after keyword arguments")
            positional.append(arg)
            continue
        if key not in allowed:
            raise BindError(f"{fn}: unknown argument {key!r}; expected one of {', '.join(allowed)}")
        if key in keywords:
            raise BindError(f"{fn}: argument {key!r} given twice")
        keywords[key] = arg.expression
    return positional, keywords


_ALL_KWARGS = {k for names in ALLOWED_KWARGS.values() for k in names}


def literal_value(node: exp.Expression, fn: str, what: str):
    """A Python value for a literal, NULL, boolean, negative number or tuple of those."""
    if isinstance(node, exp.Paren):
        return literal_value(node.this, fn, what)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Neg):
        value = literal_value(node.this, fn, what)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        return int(node.this) if node.is_int else float(node.this)
    if isinstance(node, (exp.Tuple, exp.Array)):
        return tuple(literal_value(e, fn, what) for e in node.expressions)
    raise BindError(f"{fn}: {what} must be a literal, got {node.sql()}")


def field_name(expr: exp.Expression, taken: set[str]) -> str:
    base = expr.name if isinstance(expr, exp.Column) and expr.name else "value"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name
