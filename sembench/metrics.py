"""SemBench's quality metrics, computed exactly as SemBench does.

* retrieval: precision / recall / F1 over *distinct* keys; with LIMIT k the output is
  cut to k rows first, precision = valid / distinct returned, recall = min(valid, k) /
  min(k, |ground truth|) (SemBench's evaluator takes sets: a pair returned twice, as
  Q5-Q7's self-join over the duplicated reviews of one movie does, counts once);
* pairs: as retrieval over unordered pairs (id, sorted(reviewId1, reviewId2));
* aggregates: relative error, quality 1 / (1 + relative error);
* per-group counts: mean relative error over the groups of either side (a missing group
  counts 0; a group the ground truth lacks counts an error of 1), quality 1 / (1 + that);
* scores and rankings: Spearman correlation with the ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from scipy.stats import spearmanr


def f1_limit(returned: Sequence, truth: Iterable, limit: int | None = None) -> dict:
    """Precision, recall and F1 of ``returned`` keys against the ``truth`` set."""
    truth_set = set(truth)
    rows = list(returned)[:limit] if limit is not None else list(returned)
    distinct = set(rows)
    valid = sum(1 for r in distinct if r in truth_set)
    precision = valid / len(distinct) if distinct else (1.0 if not truth_set else 0.0)
    if limit is not None:
        denominator = min(limit, len(truth_set))
        recall = min(valid, limit) / denominator if denominator else 1.0
    else:
        recall = valid / len(truth_set) if truth_set else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "quality": f1}


def unordered_pair(id_, a, b) -> tuple:
    return (id_, *sorted((a, b)))


def relative_error(predicted: float | None, truth: float) -> dict:
    if predicted is None or (isinstance(predicted, float) and math.isnan(predicted)):
        return {"relative_error": None, "quality": 0.0}
    err = abs(predicted - truth) / abs(truth) if truth else abs(predicted)
    return {"relative_error": err, "quality": 1.0 / (1.0 + err)}


def group_counts(predicted: dict, truth: dict) -> dict:
    errors = []
    for g in {*truth, *predicted}:
        n, got = truth.get(g, 0), predicted.get(g, 0)
        if n:
            errors.append(abs(got - n) / n)
        elif got:
            errors.append(1.0)
    err = sum(errors) / len(errors) if errors else 0.0
    return {"relative_error": err, "quality": 1.0 / (1.0 + err)}


def spearman(predicted: dict, truth: dict) -> dict:
    """Spearman correlation over the keys both sides have (None values dropped)."""
    keys = [
        k for k in truth if k in predicted and predicted[k] is not None and truth[k] is not None
    ]
    if len(keys) < 2:
        return {"spearman": None, "n": len(keys), "quality": 0.0}
    if len({predicted[k] for k in keys}) < 2 or len({truth[k] for k in keys}) < 2:
        # a constant side has no ranking: SemBench counts it as no correlation
        return {"spearman": None, "n": len(keys), "quality": 0.0}
    rho = spearmanr([predicted[k] for k in keys], [truth[k] for k in keys]).statistic
    rho = 0.0 if rho is None or math.isnan(rho) else float(rho)
    return {"spearman": rho, "n": len(keys), "quality": rho}
