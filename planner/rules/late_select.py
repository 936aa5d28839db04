"""LM calls of the SELECT list (and ORDER BY) run only for rows that survive the WHERE,
and, under a LIMIT that needs no LM value to pick its rows, only for those k rows."""

from __future__ import annotations

from .. import logical as L
from .pipeline import ScopeFacts, Steps, is_select_map, where_end

NAME = "late_select"


def apply(steps: Steps, facts: ScopeFacts) -> Steps | None:
    end = where_end(steps)
    maps = [s for s in steps[1:end] if is_select_map(s)]
    if not maps:
        return None
    others = [s for s in steps[1:end] if not is_select_map(s)]
    tail = steps[end:]
    top_k: Steps = []
    if facts.has_limit and not facts.blockers and facts.top_k_ok:
        top_k = [s for s in tail if isinstance(s, (L.Sort, L.Limit))]
        tail = [s for s in tail if not isinstance(s, (L.Sort, L.Limit))]
        top_k[-1].materialize = True
        top_k[-1].notes.append("LM calls in SELECT run only for the rows that survive LIMIT")
    moved = [steps[0], *others, *top_k, *maps, *tail]
    if all(a is b for a, b in zip(moved, steps, strict=True)) and not top_k:
        return None
    for m in maps:
        m.notes.append("runs only on rows that passed the WHERE")
    return moved
