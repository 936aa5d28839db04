"""In ``cheap OR LLMMap(...)`` the LM answers only rows the cheap side does not decide
(and in ``cheap AND LLMMap(...)`` only rows it does not reject).

SQL's three-valued logic makes this exact: a row that is not sent to the LM reads NULL
for the call, and ``TRUE OR NULL`` is TRUE, ``FALSE AND NULL`` is FALSE.
"""

from __future__ import annotations

from sqlglot import exp

from .. import logical as L
from .pipeline import Steps, lm_calls_in

NAME = "short_circuit"


def needed_condition(predicate: exp.Expression, target: exp.Expression) -> exp.Expression | None:
    """The rows for which ``target`` (inside ``predicate``) can change the predicate.

    None when every row needs it. A sibling still holding an unevaluated LM call is not
    cheap and is not used; once an earlier LM operator computed it (the engine replaced the
    call by a lookup) it is.
    """
    conditions: list[exp.Expression] = []
    node = target
    while node is not predicate and node.parent is not None:
        parent = node.parent
        if isinstance(parent, (exp.And, exp.Or)):
            other = parent.expression if node is parent.this else parent.this
            if not lm_calls_in(other):
                decides = exp.true() if isinstance(parent, exp.Or) else exp.false()
                is_decided = exp.Is(this=exp.Paren(this=other.copy()), expression=decides)
                conditions.append(exp.Not(this=exp.Paren(this=is_decided)))
        node = parent
    if node is not predicate or not conditions:
        return None
    return exp.and_(*conditions)


def _inside_and_or(predicate: exp.Expression, target: exp.Expression) -> bool:
    node = target
    while node is not predicate and node.parent is not None:
        if isinstance(node.parent, (exp.And, exp.Or)):
            return True
        node = node.parent
    return False


def apply(steps: Steps, facts) -> Steps | None:
    fired = False
    for step in steps:
        if not isinstance(step, L.LMOperator) or step.predicate is None:
            continue
        nodes = step.call.nodes
        if len(nodes) != 1 or not _inside_and_or(step.predicate, nodes[0]):
            continue  # used elsewhere too: every row needs its value
        step.short_circuit = True
        guard = needed_condition(step.predicate, nodes[0])
        where = guard.sql(dialect="duckdb") if guard is not None else "an earlier LM answer"
        step.notes.append(f"short-circuit: LM only for rows where {where}")
        fired = True
    return steps if fired else None
