"""Precision-first LIMIT at run time: whether a scope ranks, and each row's rank key.

The planner owns the rule (planner/rules/precision_first.py): the count that decides it
and the ranked stage's order. Here the count is run and the rows' keys computed; the keys
are scored over the distinct input tuples, so naive and optimized plans rank alike.
"""

from __future__ import annotations

from collections.abc import Callable

from semql.grammar.types import OutputType
from semql.planner.physical import RankCheck, RankOrder

from ..lm import embedding_judge

LM_ONLY = "the LM's calibrated confidence"
WITH_JUDGE = "the LM's calibrated confidence averaged with MiniLM's (both standardised)"


def applies(check: RankCheck | None, fetch, scores: Callable) -> bool:
    """Whether the scope's candidate rows are few enough to rank. ``scores(output)``:
    whether the runtime gives label scores (no rank without them: an HTTP server, a
    fake LM)."""
    if check is None or not scores(check.output):
        return False
    _, rows = fetch(check.count_sql)
    return check.applies(rows[0][0])


def rank_keys(
    output: OutputType,
    rank: RankOrder,
    values: list[tuple],
    answers: list,
    confidences: list,
    judge: Callable[[], object | None],
) -> tuple[list, str]:
    """Order keys: the LM's confidences, or their mean with the embedding judge
    (executors/lm/embedding_judge.py) where the plan asks for it, the call names texts
    for its answers and ``judge()`` gives MiniLM; and what they are, for EXPLAIN."""
    anchor_texts = (
        embedding_judge.anchors(output, rank.examples) if rank.rank_by == "lm+embedding" else None
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
