"""Precision-first LIMIT: ``LIMIT k`` (no ORDER BY) over a WHERE with one LM condition
returns the k passing rows the model is surest of, not the first k it finds.

The rows ranked are the candidates (rows that pass the WHERE's relational conjuncts) whose
arguments are among the first ``precision_first`` distinct tuples in hash order: every
candidate when there are that few, else a fixed sample of them, the same whatever rows a
plan lets through. A bound on the rows answered before any is returned, without the cliff
a count gate had (64 candidates ranked, 65 not). Sampled rows rank first by confidence;
when fewer than k of them pass, the first passing rows after them (input order) fill the
LIMIT, which the early exit then finds.

Part of the query's meaning, not a rewrite: naive plans rank the same way, so it has no
switch among the rewrite rules. This module owns all of it: where it is defined
(:func:`rank_limit`), the check that it is defined for a scope (:func:`rank_check`; the
runtime must score labels, and the cost model counts the candidates), and what it makes
of the ranked operator's stage (:func:`rank_order`): the scope's rows ordered by their
answers' confidence, the sampled rows answered first.
"""

from __future__ import annotations

from sqlglot import exp

from .. import logical as L
from ..binder import Binder, calls_in
from ..options import PlanOptions
from ..physical import lookups
from ..physical.samples import calibration_sql
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
                f"among at most {rank.sample_rows} candidate rows (a fixed sample when there "
                "are more; models that score labels)" + _RANKED_BY[rank.rank_by]
            )
            return


def rank_check(rank: L.RankLimit | None, select: exp.Select) -> RankCheck | None:
    """The scope's check: the runtime must score labels; its candidate rows (under the
    WHERE's relational conjuncts only, as naive and optimized plans both see them) are
    counted for the estimate."""
    if rank is None:
        return None
    return RankCheck(count_query(select, rank.candidates), rank.sample_rows, rank.call.output)


def rank_order(
    rank: L.RankLimit,
    select: exp.Select,
    candidates: list[exp.Expression],
    fields: list,
    inputs: str,
    results: str,
) -> RankOrder:
    """The ranked operator's part: its sample, the distinct argument tuples of the first
    ``sample_rows`` candidates in hash order (``candidates``: the working tree's
    relational conjuncts), and the scope's rows ordered by their answers' confidence
    (``select`` is the working tree's, edited in place)."""
    sample = calibration_sql(select, fields, candidates, rank.sample_rows)
    select.set("order", lookups.by_confidence(fields, inputs, results))
    return RankOrder(rank.rank_by, sample, rank.sample_rows, tuple(rank.call.examples))


def sampled_calls(candidates: float, sample_rows: int) -> float:
    """Rows answered and ranked before any is returned: every candidate, or the sample."""
    return min(candidates, float(sample_rows))


def note_cost(root: L.PlanNode, rank: L.RankLimit, candidates: int) -> None:
    """Say on the ranked operator what precision-first costs this query: every candidate
    answered and ranked, or a fixed sample of them first."""
    if candidates <= rank.sample_rows:
        note = (
            f"precision-first: all {candidates} candidate rows answered and then ranked "
            "(no early exit)"
        )
    else:
        note = (
            f"precision-first: {candidates} candidate rows, a fixed sample of "
            f"{rank.sample_rows} answered first and ranked; later rows only when fewer "
            "than the LIMIT pass in it"
        )
    for node in root.walk():
        if getattr(node, "call", None) is rank.call:
            node.notes.append(note)
            return
