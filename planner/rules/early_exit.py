"""LIMIT k directly above the WHERE's last LM filter: stop calling the LM once k rows
passed. Rows go to the LM in small batches with a passing-count check between them."""

from __future__ import annotations

import math

from sqlglot import exp

from .. import logical as L
from ..physical.stages import ExitCheck
from ..scope_sql import scope_query
from .pipeline import ScopeFacts, Steps, is_select_map, where_end

NAME = "early_exit"
BATCH_ROWS = 8


def apply(steps: Steps, facts: ScopeFacts) -> Steps | None:
    if facts.limit is None or facts.blockers or facts.ordered:
        return None  # ORDER BY, aggregates, DISTINCT need every row's answer
    where_ops = [
        s
        for s in steps[1 : where_end(steps)]
        if isinstance(s, (L.Filter, L.LMOperator)) and not is_select_map(s)
    ]
    if not where_ops or not isinstance(where_ops[-1], L.LMFilter):
        return None  # a filter above the LM filter could still drop rows
    top = where_ops[-1]
    top.early_exit = facts.limit
    top.batch_rows = BATCH_ROWS
    top.notes.append(f"early exit: stop once {facts.limit} rows pass (batches of {BATCH_ROWS})")
    return steps


def expected_calls(calls: float, limit: int, selectivity: float, batch: int) -> float:
    """LM calls until ``limit`` rows pass when a share ``selectivity`` of them do, in
    whole batches of ``batch`` rows (at most ``calls``, the input's)."""
    batches = math.ceil(limit / max(selectivity, 1e-3) / batch)
    return min(calls, batches * batch)


def exit_check(
    select: exp.Select, passing: list[exp.Expression], rows: int, batch: int
) -> ExitCheck:
    """The check between batches: the scope's rows that pass the filter with a known
    answer (``passing``), counted up to ``rows``."""
    inner = scope_query(select, [exp.Literal.number(1)], passing)
    return ExitCheck(rows, batch, f"SELECT count(*) FROM ({inner} LIMIT {rows})")
