"""LLMQA in the physical plan: the SQL of each call's contexts, and its answer put where
the call was (a list in ``x IN (...)``) for the stages and the statement that follow."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from semql.errors import BindError
from semql.grammar.types import ListType

from ..calls import LMCall, is_lm_call
from ..scope_sql import relational_conjuncts, scope_query
from .stages import QAContext

# Rows of one context read at most (the window fits far fewer; this bounds memory).
QA_CONTEXT_ROWS = 10_000


def contexts(call: LMCall, working) -> tuple[QAContext, ...]:
    """Each context of ``call`` as the SQL or text the engine reads it from
    (``working``: an expression of the plan as the run's tree holds it now)."""
    found = []
    node = working(call.nodes[0])
    for ctx in (working(c) for c in call.context):
        if call.retrieval is not None:
            found.append(QAContext("retrieval"))
        elif isinstance(ctx, (exp.Subquery, exp.Select)):
            sub = ctx.this if isinstance(ctx, exp.Subquery) else ctx
            sql = f"SELECT * FROM ({sub.sql(dialect='duckdb')}) LIMIT {QA_CONTEXT_ROWS}"
            found.append(QAContext("rows", sql=sql))
        elif isinstance(ctx, exp.Literal):
            found.append(QAContext("text", text=str(ctx.this)))
        else:
            found.append(_values(ctx, node, call.label))
    return tuple(found)


def _values(expr: exp.Expression, call_node: exp.Expression, label: str) -> QAContext:
    """An LLMQA context expression's values, not its SQL text: a constant
    (``'Today: ' || current_date``) is one value; an expression over columns
    (``'Title: ' || m.title``) has one value per row of the query's FROM under the
    WHERE's conditions that need no LM, one line each."""
    select = call_node.find_ancestor(exp.Select)
    value = exp.alias_(expr.copy(), "value")
    if select is None or expr.find(exp.Column) is None:
        return QAContext("value", sql=exp.select(value).sql(dialect="duckdb"))
    if any(is_lm_call(n) for j in select.args.get("joins") or [] for n in j.walk()):
        raise BindError(
            f"{label}: a context expression over columns cannot read a JOIN with "
            "an LM call; give it as a subquery: (SELECT ... FROM ...)"
        )
    sql = scope_query(select, [value], relational_conjuncts(select))
    return QAContext("values", sql=f"SELECT * FROM ({sql}) LIMIT {QA_CONTEXT_ROWS}")


@dataclass(frozen=True)
class Pending:
    """The answer of the ``index``-th LLMQA before the run knows it."""

    index: int

    def placeholder(self) -> exp.Expression:
        return exp.Placeholder(this=f"llmqa_{self.index}")


def substitute(call: LMCall, nodes: list[exp.Expression], answer) -> None:
    """Put the answer (or a placeholder for it) where the call was in the run's tree."""
    for n in nodes:
        parent = n.parent
        if isinstance(answer, Pending):
            n.replace(answer.placeholder())
        elif isinstance(call.output, ListType) and isinstance(parent, exp.In):
            parent.set("field", None)
            parent.set("expressions", [exp.convert(v) for v in answer] or [exp.null()])
        else:
            n.replace(exp.convert(answer))
