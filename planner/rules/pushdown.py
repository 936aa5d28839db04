"""Relational WHERE conjuncts run before any LM operator: the LM sees only rows that
can still reach the output (BlendSQL; "LM-aware filter ordering", Liu et al.)."""

from __future__ import annotations

from .. import logical as L
from .pipeline import Steps, lm_calls_in, where_index

NAME = "pushdown"


def apply(steps: Steps, facts) -> Steps | None:
    i = where_index(steps)
    if i is None or not any(isinstance(s, L.LMOperator) for s in steps[1:i]):
        return None
    where = steps[i]
    relational = [p for p in where.predicates if not lm_calls_in(p)]
    if not relational:
        return None
    rest = [p for p in where.predicates if lm_calls_in(p)]
    remaining = [L.Filter(predicates=rest, role="where")] if rest else []
    pushed = L.Filter(predicates=relational, notes=["pushdown: relational filter before LM work"])
    return [steps[0], pushed, *steps[1:i], *remaining, *steps[i + 1 :]]
