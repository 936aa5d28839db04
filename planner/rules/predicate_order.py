"""Several LM predicates in one conjunction run cheapest-and-most-selective first.

The rank of a predicate is cost / (1 - selectivity) (Liu et al.; classic predicate
migration). Costs come from the cost model; selectivities are measured at run time on a
small sample of the rows the first filter would see (the sampled answers are kept and
reused), because no statistic can say what fraction of reviews a model calls positive.
Here the rule only finds the groups of filters that may be reordered.
"""

from __future__ import annotations

from .. import logical as L
from .pipeline import Steps, lm_calls_in

NAME = "predicate_order"
SAMPLE_ROWS = 8


def units(steps: Steps) -> list[list[L.LMOperator] | None]:
    """Runs of [LMMap..., LMFilter] for one predicate each; None between separate runs."""
    found: list[list[L.LMOperator] | None] = []
    current: list[L.LMOperator] = []
    for step in steps:
        if isinstance(step, L.LMOperator) and step.predicate is not None:
            if current and current[-1].predicate is not step.predicate:
                found.append(None)  # the last predicate was not finished by a filter
                current = []
            current.append(step)
            if isinstance(step, L.LMFilter):
                found.append(current)
                current = []
        else:
            found.append(None)
            current = []
    return found


def _self_contained(unit: list[L.LMOperator]) -> bool:
    """Every LM call of the unit's predicate is computed inside the unit."""
    own = [n for op in unit for n in op.call.nodes]
    return all(any(n is node for n in own) for node in lm_calls_in(unit[-1].predicate))


def apply(steps: Steps, facts) -> Steps | None:
    groups: list[list[list[L.LMOperator]]] = [[]]
    for unit in units(steps):
        if unit is not None and _self_contained(unit):
            groups[-1].append(unit)
        elif groups[-1]:
            groups.append([])
    fired = False
    for number, group in enumerate(g for g in groups if len(g) >= 2):
        for unit in group:
            for op in unit:
                op.reorder_group = number
            unit[-1].notes.append(
                f"predicate order: ranked by cost / (1 - selectivity) at run time, "
                f"selectivity from a {SAMPLE_ROWS}-row sample"
            )
        fired = True
    return steps if fired else None
