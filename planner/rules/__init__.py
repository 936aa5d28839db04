"""Rewrite rules, one a module, applied in this order to every scope's operator list.

Each rule is ``apply(steps, facts) -> steps | None`` and has a switch of the same name in
``PlanOptions``; ``PlanOptions.naive()`` switches them all off.
"""

from . import (
    cascade,
    dedup,
    early_exit,
    late_select,
    predicate_order,
    prefix_reorder,
    projection_pruning,
    pushdown,
    short_circuit,
)

RULES = (
    pushdown,
    cascade,
    late_select,
    short_circuit,
    predicate_order,
    early_exit,
    dedup,
    projection_pruning,
    prefix_reorder,
)
