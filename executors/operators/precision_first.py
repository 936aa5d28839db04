"""Precision-first LIMIT at run time: whether a scope ranks, and each row's rank key.

The planner writes the rule (``ScopePlan.rank_limit``: the call, the WHERE's relational
conjuncts and the candidate cap); here the candidates are counted and the rows' keys
computed. The count uses the relational conjuncts only, so naive and optimized plans
decide alike; the keys are scored over the distinct input tuples, so they rank alike.
"""

from __future__ import annotations

from collections.abc import Callable

from semql.planner import logical as L
from semql.planner.calls import LMCall
from semql.planner.scope_sql import count_query

from ..lm import embedding_judge
from .run_state import QueryRun

LM_ONLY = "the LM's calibrated confidence"
WITH_JUDGE = "the LM's calibrated confidence averaged with MiniLM's (both standardised)"


def ranked_call(fetch, scores: Callable, scope: L.ScopePlan, run: QueryRun) -> LMCall | None:
    """The call whose confidence orders the LIMITed rows, if the scope's candidate rows
    are few enough. ``scores(output)``: whether the runtime gives label scores (no rank
    without them: an HTTP server, a fake LM)."""
    rank = scope.rank_limit
    if rank is None or not scores(rank.call.output):
        return None
    _, rows = fetch(count_query(run.select(scope), rank.candidates))
    return rank.call if rank.applies(rows[0][0]) else None


def rank_keys(
    call: LMCall,
    rank: L.RankLimit | None,
    values: list[tuple],
    answers: list,
    confidences: list,
    judge: Callable[[], object | None],
) -> tuple[list, str]:
    """Order keys: the LM's confidences, or their mean with the embedding judge
    (executors/lm/embedding_judge.py) where the plan asks for it, the call names texts
    for its answers and ``judge()`` gives MiniLM; and what they are, for EXPLAIN."""
    anchor_texts = (
        embedding_judge.anchors(call.output, call.examples)
        if rank is not None and rank.rank_by == "lm+embedding"
        else None
    )
    embedder = judge() if anchor_texts else None
    if embedder is None:
        return confidences, LM_ONLY
    first: dict[tuple, int] = {}
    for i, row in enumerate(values):
        first.setdefault(tuple(row), i)
    keep = list(first.values())
    texts = [embedding_judge.row_text(values[i]) for i in keep]
    judged = embedding_judge.margins(
        embedder.embed, texts, [answers[i] for i in keep], anchor_texts
    )
    scores = embedding_judge.combined([confidences[i] for i in keep], judged)
    by_row = dict(zip(first, scores.tolist(), strict=True))
    keys = [by_row[tuple(row)] for row in values]
    return [None if k != k else k for k in keys], WITH_JUDGE  # NaN (unscored) ranks last
