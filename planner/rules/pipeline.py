"""The shape the rewrite rules work on: one scope's operators as a bottom-up list.

A scope's plan is linear above its source (Scan, Join, LMJoin or an opaque DuckDB part):
``[source, op, op, ..., Project, Sort, Limit]``. Rules are pure functions from such a
list (and facts about the SELECT) to a new list, or None when they do not apply, in the
manner of sqlglot's optimizer rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from sqlglot import exp

from .. import logical as L
from ..calls import is_lm_call

Steps = list[L.PlanNode]


@dataclass(frozen=True)
class ScopeFacts:
    """What the rules need to know about the SELECT around the operators."""

    limit: int | None  # LIMIT + OFFSET when both are integer literals
    has_limit: bool
    ordered: bool  # ORDER BY present
    blockers: bool  # aggregate, DISTINCT, window or QUALIFY between WHERE and LIMIT
    top_k_ok: bool  # the LIMITed rows can be fixed before SELECT-list LM calls run


def lm_calls_in(node: exp.Expression) -> list[exp.Expression]:
    return [n for n in node.walk() if is_lm_call(n)]


def is_select_map(step: L.PlanNode) -> bool:
    """An LMMap for a SELECT-list / ORDER BY call (not part of a WHERE predicate)."""
    return isinstance(step, L.LMMap) and step.predicate is None


def where_index(steps: Steps) -> int | None:
    """Position of the Filter that holds the WHERE clause as written, if any."""
    return next(
        (i for i, s in enumerate(steps) if isinstance(s, L.Filter) and s.role == "where"), None
    )


def where_end(steps: Steps) -> int:
    """Position of the first operator above the WHERE part (Aggregate or Project)."""
    return next(i for i, s in enumerate(steps) if isinstance(s, (L.Aggregate, L.Project)))


def link(steps: Steps) -> L.PlanNode:
    """Chain the steps into a tree (each step's first child is the one below it)."""
    for below, above in pairwise(steps):
        above.children = [below]
    return steps[-1]


SOURCES = (L.Scan, L.DuckDBPlan, L.Join, L.LMJoin)


def unlink(root: L.PlanNode) -> Steps:
    """The bottom-up list of a linked scope (the inverse of :func:`link`)."""
    steps = []
    node = root
    while not isinstance(node, SOURCES):
        steps.append(node)
        node = node.child
    steps.append(node)
    return steps[::-1]
