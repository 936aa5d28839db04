"""The calibration choice again, without the movies SemBench's queries score.

bench/closed_set_quality.py splits reviews by movie into dev and test; the two movies
SemBench's Q2-Q9 ask about (taken_3, ant_man_and_the_wasp_quantumania) fell into dev,
where the default method was chosen. This recomputes every method's dev and test means
from the stored per-row label distributions with those two movies' reviews left out,
so the choice can be checked on rows SemBench never scores. No model is run.

    python bench/quality_holdout.py bench/results/quality/quality-...-rows.json
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from stored_scores import QUERY_MOVIES, load, publish, review_field

METHODS = ("off", "content_free", "domain", "batch")


def macro_f1(pred: list[bool], gold: list[bool]) -> float:
    f1s = []
    for cls in (True, False):
        tp = sum(p == cls and g == cls for p, g in zip(pred, gold, strict=True))
        wrong = sum((p == cls) != (g == cls) for p, g in zip(pred, gold, strict=True))
        f1s.append(2 * tp / (2 * tp + wrong) if tp else 0.0)
    return float(np.mean(f1s))


def score(entry: dict, idx: list[int], method: str) -> float:
    probs = np.asarray(entry["probs"])[idx]
    gold = [entry["truth"][i] for i in idx]
    prior = {
        "off": np.ones(probs.shape[1]),
        "content_free": np.asarray(entry["content_free"]),
        "domain": np.asarray(entry["domain"]),
        "batch": probs.mean(axis=0),
    }[method]
    q = probs / prior
    q /= q.sum(axis=1, keepdims=True)
    if probs.shape[1] == 5:  # the 1-5 score: Spearman of the expected value
        return float(spearmanr(q @ np.arange(1, 6), gold).statistic)
    return macro_f1([j == 0 for j in q.argmax(axis=1)], gold)  # label 0: yes / positive


def main() -> None:
    path, dump = load(__doc__)
    movie = review_field("id")
    lines = [
        "# Mean over every model and task setting, SemBench's query movies left out\n",
        "| split | rows a task (mean) | " + " | ".join(METHODS) + " |",
        "|---|---|" + "---|" * len(METHODS),
    ]
    for split in ("dev", "test"):
        means, sizes = {m: [] for m in METHODS}, []
        for entry in dump:
            idx = [
                i
                for i, (s, rid) in enumerate(zip(entry["split"], entry["reviewId"], strict=True))
                if s == split and movie[rid] not in QUERY_MOVIES
            ]
            sizes.append(len(idx))
            for m in METHODS:
                means[m].append(score(entry, idx, m))
        cells = " | ".join(f"{np.mean(means[m]):.3f}" for m in METHODS)
        lines.append(f"| {split} | {np.mean(sizes):.0f} | {cells} |")
    publish(path, "holdout", lines)


if __name__ == "__main__":
    main()
