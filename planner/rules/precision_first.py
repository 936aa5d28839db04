"""Precision-first LIMIT: ``LIMIT k`` (no ORDER BY) over a WHERE with one LM condition
returns the k passing rows the model is surest of, not the first k it finds.

Part of the query's meaning, not a rewrite: naive plans rank the same way, so it has no
switch among the rewrite rules. This module owns all of it: where it is defined
(:func:`rank_limit`), the count that decides at run time whether it applies
(:func:`rank_check`; the cost model asks the same), and what it makes of the ranked
operator's stage (:func:`rank_order`). When it applies, every candidate row is answered
(no early exit) and the scope's rows are ordered by their answers' confidence.
"""

from __future__ import annotations

from sqlglot import exp

from .. import logical as L
from ..binder import Binder, calls_in
from ..options import PlanOptions
from ..physical import lookups
from ..physical.stages import RankCheck, RankOrder
from ..scope_sql import conjuncts, count_query, relational_conjuncts
from .pipeline import ScopeFacts

_RANKED_BY = {
    "lm": "; ranked by the LM's calibrated confidence",
    "lm+embedding": "; ranked by the LM's calibrated confidence averaged with the "
    "embedder's, where the call names texts for its answers (options or examples)",
}


def rank_limit(
    select: exp.Select, binder: Binder, opts: PlanOptions, facts: ScopeFacts
) -> L.RankLimit | None:
    """Precision-first LIMIT, where the query has the shape it is defined for: LIMIT k,
    no ORDER BY / aggregate / DISTINCT, and exactly one LM call in the WHERE, a closed
    set (bool or options) whose answer has a probability to rank by."""
    if not opts.precision_first or facts.limit is None or facts.ordered or facts.blockers:
        return None
    where = select.args.get("where")
    parts = conjuncts(where.this) if where is not None else []
    lm_conjuncts = [c for c in parts if calls_in(c)]
    if len(lm_conjuncts) != 1:
        return None
    calls = calls_in(lm_conjuncts[0])
    if len(calls) != 1 or any(calls_in(j) for j in select.args.get("joins") or []):
        return None
    call = binder.bound(calls[0])
    out = call.output if call is not None else None
    if call is None or call.function != "LLMMap" or out is None or out.labels() is None:
        return None
    if getattr(out, "expected", False):
        return None  # a number (expected value), not a label with a probability
    return L.RankLimit(call, relational_conjuncts(select), opts.precision_first, opts.rank_by)


def note(root: L.PlanNode, rank: L.RankLimit, k: int | None) -> None:
    """Say on the ranked operator what precision-first LIMIT will do (EXPLAIN)."""
    for node in root.walk():
        if getattr(node, "call", None) is rank.call:
            node.notes.append(
                f"precision-first: LIMIT {k} takes the {k} rows the model is surest of "
                f"when at most {rank.max_rows} rows are candidates (models that score labels)"
                + _RANKED_BY[rank.rank_by]
            )
            return


def rank_check(rank: L.RankLimit | None, select: exp.Select) -> RankCheck | None:
    """The count that decides whether the scope ranks: its candidate rows, under the
    WHERE's relational conjuncts only, so naive and optimized plans decide alike."""
    if rank is None:
        return None
    return RankCheck(count_query(select, rank.candidates), rank.max_rows, rank.call.output)


def rank_order(
    rank: L.RankLimit, select: exp.Select, fields: list, inputs: str, results: str
) -> RankOrder:
    """The ranked operator's part: the scope's rows ordered by their answers' confidence
    (``select`` is the working tree's, edited in place)."""
    select.set("order", lookups.by_confidence(fields, inputs, results))
    return RankOrder(rank.rank_by, tuple(rank.call.examples))


def note_cost(root: L.PlanNode, rank: L.RankLimit, candidates: int, applies: bool) -> None:
    """Say on the ranked operator whether precision-first applies to this query and what
    it costs: every candidate answered, or the first rows that pass (its early exit)."""
    if applies:
        note = (
            f"precision-first applies: {candidates} candidate rows (at most {rank.max_rows}), "
            "all answered and then ranked (no early exit)"
        )
    else:
        note = (
            f"precision-first does not apply: {candidates} candidate rows (over "
            f"{rank.max_rows}), so the first rows that pass are kept"
        )
    for node in root.walk():
        if getattr(node, "call", None) is rank.call:
            node.notes.append(note)
            return
