"""Relational WHERE conjuncts run before any LM operator: the LM sees only rows that
can still reach the output (BlendSQL; "LM-aware filter ordering", Liu et al.).

An LLMJoin source gets the conjuncts over its left side's tables: it maps only the left
values of rows that pass them. Conjuncts over the right table are not pushed: they would
shrink the set of values a left value may be mapped to, and so change the mapping."""

from __future__ import annotations

from sqlglot import exp

from .. import logical as L
from .pipeline import Steps, lm_calls_in, where_index

NAME = "pushdown"


def apply(steps: Steps, facts) -> Steps | None:
    i = where_index(steps)
    joined = _push_into_lm_join(steps, i)
    if i is None or not any(isinstance(s, L.LMOperator) for s in steps[1:i]):
        return steps if joined else None
    where = steps[i]
    relational = [p for p in where.predicates if not lm_calls_in(p)]
    if not relational:
        return None
    rest = [p for p in where.predicates if lm_calls_in(p)]
    remaining = [L.Filter(predicates=rest, role="where")] if rest else []
    pushed = L.Filter(predicates=relational, notes=["pushdown: relational filter before LM work"])
    return [steps[0], pushed, *steps[1:i], *remaining, *steps[i + 1 :]]


def _push_into_lm_join(steps: Steps, where_at: int | None) -> bool:
    source = steps[0]
    if where_at is None or not isinstance(source, L.LMJoin) or source.join is None:
        return False
    left = _left_aliases(source.join)
    pushed = [
        p
        for p in steps[where_at].predicates
        if not lm_calls_in(p) and _reads_only(p, left) and p not in source.left_predicates
    ]
    if not pushed:
        return False
    source.left_predicates += pushed
    source.notes.append(
        "pushdown: the LM maps only left values of rows passing "
        + " AND ".join(p.sql(dialect="duckdb") for p in pushed)
    )
    return True


def _left_aliases(join: exp.Join) -> set[str]:
    """Table names/aliases on the left of ``join`` (the FROM and the joins before it)."""
    select = join.parent
    joins = select.args.get("joins") or []
    before = joins[: next(i for i, j in enumerate(joins) if j is join)]
    from_ = select.args.get("from_")
    tables = [from_.this] if from_ is not None else []
    return {t.alias_or_name for t in [*tables, *(j.this for j in before)]}


def _reads_only(pred: exp.Expression, aliases: set[str]) -> bool:
    """Every column of ``pred`` is qualified by one of ``aliases`` (an unqualified column
    could belong to either side)."""
    cols = list(pred.find_all(exp.Column))
    return bool(cols) and all(c.table in aliases for c in cols) and not pred.find(exp.Select)
