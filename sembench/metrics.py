"""SemBench's quality metrics, computed exactly as SemBench does.

* retrieval: precision / recall / F1; with LIMIT k the output is cut to k rows,
  precision = valid / returned, recall = min(valid, k) / min(k, |ground truth|);
* pairs: as retrieval over unordered pairs (id, sorted(reviewId1, reviewId2));
* aggregates: relative error, quality 1 / (1 + relative error);
* per-group counts: mean relative error over the ground truth's groups (a missing group
  counts 0), quality 1 / (1 + that);
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
    valid = sum(1 for r in set(rows) if r in truth_set)
    precision = valid / len(rows) if rows else (1.0 if not truth_set else 0.0)
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
    errors = [
        abs(predicted.get(g, 0) - n) / n if n else float(predicted.get(g, 0))
        for g, n in truth.items()
    ]
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
