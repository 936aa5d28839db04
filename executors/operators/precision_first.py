"""Precision-first LIMIT at run time: whether a scope ranks, which rows are ranked, and
each ranked row's key.

The planner owns the rule (planner/rules/precision_first.py): the sample of candidate
argument tuples and the ranked stage's order. Here the sampled rows are picked out of the
stage's rows and their keys computed over their distinct tuples, so naive and optimized
plans rank alike.
"""

from __future__ import annotations

from collections.abc import Callable

from semql.grammar.types import OutputType
from semql.planner.physical import RankCheck, RankOrder

from ..lm import embedding_judge

LM_ONLY = "the LM's calibrated confidence"
WITH_JUDGE = "the LM's calibrated confidence averaged with MiniLM's (both standardised)"


def applies(check: RankCheck | None, scores: Callable) -> bool:
    """Whether the scope ranks: precision-first is defined for it and the runtime gives
    label scores (``scores(output)``; none from an HTTP server or a fake LM)."""
    return check is not None and bool(scores(check.output))


def sample_first(rows: list[tuple], sample: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """The stage's rows (``(__idx, *arguments)``, in input order) split into those whose
    arguments are in the plan's sample (answered first and ranked) and the rest; rows
    with the same arguments stay on one side, so dedup answers them once."""
    chosen = {tuple(s) for s in sample}
    first: list[tuple] = []
    rest: list[tuple] = []
    for r in rows:
        (first if tuple(r[1:]) in chosen else rest).append(r)
    return first, rest


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
