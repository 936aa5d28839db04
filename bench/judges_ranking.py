"""Precision-first LIMIT ranked by several judges, from stored label scores.

Precision-first LIMIT (planner.logical.RankLimit) returns the k passing rows the LM is
surest of. Could other judges order those rows better? This replays it on the stored
per-row scores of bench/closed_set_quality.py (both bundled LMs, content-free calibration)
and the bundled MiniLM zero-shot score (as bench/judges.py), on the rows SemBench's query
movies do not touch, with the positive class cut to 25% and to 12% of the rows (taken_3,
the demo's movie, has 12%): the rows Gemma passes, ranked by

- ``gemma``: Gemma's calibrated log-odds (what SemQL does);
- ``mean``: the equal-weight mean of the three judges' standardised scores;
- ``spectral``: bench/judges.py's agreement-weighted combination,

each judge standardised over the rows of the draw (a query's candidates). No label is
used by any ranking; labels only score the top k. MiniLM's anchors are each task's label
words, chosen by hand (stored_scores.ANCHORS): a query would have to take them from its
options or examples. Not wired into queries.

    python bench/judges_ranking.py bench/results/quality/quality-...-rows.json
"""

from __future__ import annotations

import numpy as np
from judges import log_odds, spectral_weights, standardise
from stored_scores import ANCHORS, QUERY_MOVIES, by_setting, load, publish, review_field

from semql.executors.proxy.embeddings import MiniLMEmbedder

TASKS = ("pos_bool", "likes_bool", "sentiment")
K = 3
DRAWS = 200
SHARES = (0.25, 0.12)
RANKINGS = ("gemma", "mean", "spectral")


def replay(scores: np.ndarray, gold: np.ndarray, share: float, rng) -> dict[str, float]:
    """Mean precision@K of each ranking over seeded draws with ``share`` positives."""
    got: dict[str, list[float]] = {name: [] for name in RANKINGS}
    rows = np.arange(len(gold))
    pos, neg = rows[gold], rows[~gold]
    keep = min(len(pos), int(round(share * len(neg) / (1 - share))))
    for _ in range(DRAWS):
        draw = np.concatenate([neg, rng.choice(pos, keep, replace=False)])
        z = np.vstack([standardise(s[draw]) for s in scores])
        passing = np.flatnonzero(scores[0][draw] > 0)  # Gemma's own decision
        if len(passing) < K:
            continue
        by = {"gemma": z[0], "mean": z.mean(axis=0), "spectral": spectral_weights(z) @ z}
        for name, score in by.items():
            top = passing[np.argsort(-score[passing], kind="stable")[:K]]
            got[name].append(float(gold[draw][top].mean()))
    return {name: float(np.mean(v)) if v else float("nan") for name, v in got.items()}


def main() -> None:
    path, dump = load(__doc__)
    text, movie = review_field("reviewText"), review_field("id")
    embedder = MiniLMEmbedder()
    settings = by_setting(dump, TASKS)
    lines = [
        f"# Precision@{K} of precision-first LIMIT by ranking, rows of the query movies left out\n",
        f"Mean over {DRAWS} seeded draws; the rows Gemma passes, ranked by each judge.\n",
        "| task | shots | positives | " + " | ".join(RANKINGS) + " |",
        "|---|---|---|" + "---|" * len(RANKINGS),
    ]
    means: dict[tuple, list[float]] = {}
    rng = np.random.default_rng(0)
    for (task, shots), entries in settings.items():
        gemma, smol = entries["gemma"], entries["smollm2"]
        idx = [i for i, r in enumerate(gemma["reviewId"]) if movie[r] not in QUERY_MOVIES]
        gold = np.asarray(gemma["truth"], dtype=bool)[idx]
        vectors = embedder.embed([text[gemma["reviewId"][i]] for i in idx])
        sims = vectors @ embedder.embed(list(ANCHORS[task])).T
        scores = np.vstack([log_odds(gemma)[idx], log_odds(smol)[idx], sims[:, 0] - sims[:, 1]])
        for share in SHARES:
            result = replay(scores, gold, share, rng)
            for name in RANKINGS:
                means.setdefault((share, name), []).append(result[name])
            cells = " | ".join(f"{result[n]:.3f}" for n in RANKINGS)
            lines.append(f"| {task} | {shots} | {share:.0%} | {cells} |")
    lines.append("")
    for share in SHARES:
        cells = ", ".join(f"{n} {np.nanmean(means[(share, n)]):.3f}" for n in RANKINGS)
        lines.append(f"- {share:.0%} positives, mean of settings: {cells}")
    publish(path, "judges-ranking", lines)


if __name__ == "__main__":
    main()
