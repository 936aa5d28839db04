"""Precision-first LIMIT against the first rows that pass, from stored label scores.

``LIMIT k`` over an LM condition used to return the first k rows the model said yes to;
precision-first returns the k it is surest of (planner.logical.RankLimit), at the price
of answering every candidate row. This replays both on the per-row label distributions
that bench/closed_set_quality.py stored (real model outputs, SemQL's default content-free
calibration), for every model, yes/no-style task and shot setting, on the rows SemBench's
query movies do not touch:

- ``first-k``: rows in a random order (200 seeded shuffles), the first k the model
  passes; cost = rows answered until then;
- ``surest-k``: the k passing rows with the highest calibrated probability; cost = all.

Also with the positive class cut to 25% of the rows (a movie most critics disliked, as
in SemBench's taken_3), where the first rows that pass are most often wrong. No labels
are used by either method; they only score the picks.

    python bench/precision_first.py bench/results/quality/quality-...-rows.json
"""

from __future__ import annotations

import numpy as np
from stored_scores import QUERY_MOVIES, calibrated, load, publish, review_field

TASKS = ("pos_bool", "likes_bool", "sentiment")  # the label asked for is label 0
K = 3
SHUFFLES = 200
SKEW = 0.25


def replay(q: np.ndarray, gold: np.ndarray, rng: np.random.Generator, skew: float | None):
    """Mean precision@K and rows answered of both methods over seeded shuffles."""
    first, surest, cost_first = [], [], []
    for _ in range(SHUFFLES):
        rows = np.arange(len(gold))
        if skew is not None:
            pos, neg = rows[gold], rows[~gold]
            keep = min(len(pos), int(round(skew * len(neg) / (1 - skew))))
            rows = np.concatenate([neg, rng.choice(pos, keep, replace=False)])
        order = rng.permutation(rows)
        passing = [i for i in order if q[i].argmax() == 0]
        if len(passing) < K:
            continue
        picks = passing[:K]
        cost_first.append(int(np.flatnonzero(order == picks[-1])[0]) + 1)
        first.append(gold[picks].mean())
        best = sorted(passing, key=lambda i: -q[i, 0])[:K]  # stable: ties in row order
        surest.append(gold[best].mean())
    return np.mean(first), np.mean(surest), np.mean(cost_first), len(rows)


def main() -> None:
    path, dump = load(__doc__)
    movie = review_field("id")
    lines = [
        f"# Precision of LIMIT {K} over an LM condition: first rows that pass vs surest rows\n",
        f"Mean precision@{K} over {SHUFFLES} seeded row orders; rows of SemBench's query movies "
        "left out; content-free calibration; cost = rows the LM answers.\n",
        "| model | task | shots | positives | first-k precision | surest-k precision "
        "| first-k cost | surest-k cost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals: dict[str, list] = {}
    rng = np.random.default_rng(0)
    for entry in dump:
        if entry["task"] not in TASKS:
            continue
        idx = [i for i, rid in enumerate(entry["reviewId"]) if movie[rid] not in QUERY_MOVIES]
        q = calibrated(entry, idx)
        gold = np.asarray([bool(entry["truth"][i]) for i in idx])
        for skew in (None, SKEW):
            first, surest, cost, n = replay(q, gold, rng, skew)
            share = f"{gold.mean():.0%}" if skew is None else f"{SKEW:.0%}"
            totals.setdefault(share if skew else "as sampled", []).append((first, surest))
            lines.append(
                f"| {entry['model'][:14]} | {entry['task']} | {entry['shots']} | {share} "
                f"| {first:.2f} | {surest:.2f} | {cost:.0f} | {n} |"
            )
    lines.append("")
    for name, pairs in totals.items():
        a, b = np.mean(pairs, axis=0)
        lines.append(f"- positives {name}: first-k {a:.3f}, surest-k {b:.3f} (mean of settings)")
    publish(path, "precision-first", lines)


if __name__ == "__main__":
    main()
