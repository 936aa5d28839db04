"""A second judge for precision-first LIMIT: the sentence embedder's zero-shot opinion
of each row's answer, averaged with the LM's.

Precision-first LIMIT (planner.logical.RankLimit) returns the k passing rows ranked
highest. The LM's calibrated confidence alone ranks a wrong answer first when the model
is sure of it; a judge that errs differently (a sentence embedder comparing the row with
texts that stand for each answer) catches some of those. Measured on stored real-model
scores, rows of SemBench's query movies left out (bench/judges_ranking.py): averaging the
two lifts precision@3 where the query names its answers, and the question's own text as
an anchor made it worse, so a call with no such texts is ranked by the LM alone.

The anchors come only from the query, never from the data: an options call's labels
("positive", "negative"), or a call's examples grouped by their answers. Both judges'
scores are standardised over the operator's distinct inputs (its candidates, the same
rows under naive and optimized execution), so the ranking does not depend on the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semql.grammar.types import BoolType, OptionsType, OutputType

# rank_by= values: the LM's confidence alone, or averaged with the embedding judge
RANKINGS = ("lm", "lm+embedding")


def anchors(out_type: OutputType, examples: Sequence[tuple]) -> dict | None:
    """Answer value -> texts standing for it, or None where the query names no text for
    two or more of its answers (a yes/no question without examples of both answers)."""
    if isinstance(out_type, OptionsType) and not out_type.expected:
        return {
            value: [label] for value, label in zip(out_type.values, out_type.labels(), strict=True)
        }
    if isinstance(out_type, BoolType):
        by_answer: dict = {}
        for example in examples:
            *fields, answer = example
            by_answer.setdefault(bool(answer), []).append(row_text(fields))
        return by_answer if len(by_answer) == 2 else None
    return None


def row_text(values: Sequence) -> str:
    """What the embedder reads of a row (or an example): its field values in order."""
    return "\n".join("" if v is None else str(v) for v in values)


def margins(embed, texts: Sequence[str], answers: Sequence, anchor_texts: dict) -> np.ndarray:
    """Each row's cosine similarity to the texts of its own answer minus its mean
    similarity to those of the other answers (NaN where its answer has no anchor).

    ``embed``: texts -> unit vectors (rows). An answer's texts are averaged first."""
    labels = list(anchor_texts)
    protos = np.vstack([embed(anchor_texts[label]).mean(axis=0) for label in labels])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    sims = embed(list(texts)) @ protos.T
    out = np.full(len(texts), np.nan)
    for i, answer in enumerate(answers):
        if answer in labels:
            own = labels.index(answer)
            out[i] = sims[i, own] - np.delete(sims[i], own).mean()
    return out


def combined(confidences: Sequence[float | None], judged: np.ndarray) -> np.ndarray:
    """The mean of the two judges' standardised scores: the LM's log-odds of its answer's
    calibrated probability and the embedder's margin. A row the embedder could not score
    keeps the LM's; a row the LM did not score (a server's decoded fallback) is NaN, and
    ranks after every scored row, whatever the embedder thinks of it."""
    conf = np.array([np.nan if c is None else c for c in confidences], dtype=np.float64)
    conf = np.clip(conf, 1e-6, 1 - 1e-6)
    both = np.vstack([standardise(np.log(conf / (1 - conf))), standardise(judged)])
    out = np.full(both.shape[1], np.nan)
    scored = ~np.isnan(conf)
    out[scored] = np.nanmean(both[:, scored], axis=0)
    return out


def standardise(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the finite values (NaN stays NaN)."""
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return x
    return (x - finite.mean()) / (finite.std() or 1.0)
