"""Several LM predicates in one conjunction run cheapest-and-most-selective first.

The rank of a predicate is cost / (1 - selectivity) (Liu et al.; classic predicate
migration). Costs come from the cost model; selectivities are measured at run time on a
small sample of the rows the first filter would see (the sampled answers are kept and
reused), because no statistic can say what fraction of reviews a model calls positive.
Here the rule finds the groups of filters that may be reordered, and :func:`reorder`
is the interface the executor calls with the ranks it measured: the new order is decided
here, and the plan itself is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def group_units(steps: Steps, i: int) -> tuple[int, list[list[L.LMOperator]]]:
    """The end (exclusive) of the reorder group starting at ``steps[i]`` and its units
    in written order."""
    group = steps[i].reorder_group
    j = i
    while j < len(steps) and isinstance(steps[j], L.LMOperator):
        if steps[j].reorder_group != group:
            break
        j += 1
    return j, [u for u in units(steps[i:j]) if u]


def rank(cost: float, passed: int, rows: int) -> float:
    """A predicate's rank from its cost per row and the sample rows it passed: cost /
    (1 - selectivity), the selectivity smoothed so that no sample gives 0 or 1."""
    selectivity = (passed + 0.5) / (rows + 1)
    return cost / (1.0 - selectivity)


@dataclass(frozen=True)
class Reordered:
    """A group's run order. ``exit_from`` is the filter the planner gave the early exit
    (LIMIT k above), ``exit_to`` the filter that carries it now: the one that runs last."""

    steps: Steps
    exit_from: L.LMFilter | None
    exit_to: L.LMOperator | None


def reorder(steps: Steps, i: int, ranks: list[float]) -> Reordered:
    """The steps with the group at ``steps[i]`` ordered by ``ranks`` (one per unit, as
    :func:`group_units` lists them; lowest first, ties in written order)."""
    j, found = group_units(steps, i)
    ranked = sorted(zip(ranks, range(len(found)), found, strict=True), key=lambda t: t[:2])
    ordered = [op for _, _, unit in ranked for op in unit]
    exits = [op for op in steps[i:j] if isinstance(op, L.LMFilter) and op.early_exit is not None]
    return Reordered(
        [*steps[:i], *ordered, *steps[j:]],
        exits[0] if exits else None,
        ordered[-1] if exits else None,
    )
