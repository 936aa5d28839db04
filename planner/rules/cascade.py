"""Each LM predicate of the WHERE becomes an LMFilter that sees only the rows that
passed the operators below it, instead of every LM call running on every row."""

from __future__ import annotations

from .. import logical as L
from .pipeline import Steps, lm_calls_in, where_index

NAME = "cascade"


def apply(steps: Steps, facts) -> Steps | None:
    i = where_index(steps)
    if i is None:
        return None
    where = steps[i]
    owned = [s for s in steps[1:i] if isinstance(s, L.LMMap) and s.predicate is not None]
    lm_preds = [p for p in where.predicates if lm_calls_in(p)]
    if not owned or not lm_preds:
        return None
    chain: Steps = []
    for pred in lm_preds:
        calls = [m.call for m in owned if m.predicate is pred]
        chain += [L.LMMap(call=c, predicate=pred) for c in calls[:-1]]
        if calls:
            note = "cascade: sees only rows that passed the operators below"
            chain.append(L.LMFilter(call=calls[-1], predicate=pred, notes=[note]))
        else:  # its calls are computed for an earlier predicate
            chain.append(L.Filter(predicates=[pred]))
    relational = [p for p in where.predicates if not lm_calls_in(p)]
    if relational:  # pushdown is off: they still apply, above the LM work
        chain.append(L.Filter(predicates=relational))
    kept = [s for s in steps[:i] if not any(s is m for m in owned)]
    return [*kept, *chain, *steps[i + 1 :]]
