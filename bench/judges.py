"""Several judges, combined without labels, against the best single judge (ROC AUC).

Judges of one yes/no question over the same reviews: Gemma 3 270M and SmolLM2 135M
(log-odds of their content-free calibrated label probabilities, as stored by
bench/closed_set_quality.py) and the bundled MiniLM zero-shot (cosine similarity of the
review to the yes-side label words minus the no-side's, as bench/ranking_auc.py).

Label-free combinations, each judge's score standardised over the rows first:

- ``mean``: equal weights;
- ``spectral``: weights from the judges' covariance. If judges err independently given
  the true label, the off-diagonal covariance is rank one, C_ij = v_i v_j, with v_i
  growing with judge i's separation of the classes (the spectral meta-learner, Parisi et
  al. 2014; Dawid-Skene and Snorkel's label models rest on the same agreement structure).
  With three judges v_i^2 = C_ij C_ik / C_jk; weights w_i = v_i / (1 - v_i^2), signs
  anchored on Gemma's (the LM the query asked).

No label is used by any judge or weight; labels only score the result.

    python bench/judges.py bench/results/quality/quality-...-rows.json
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from stored_scores import ANCHORS, by_setting, calibrated, load, publish, review_field

from semql.executors.proxy.embeddings import MiniLMEmbedder

JUDGES = ("gemma", "smollm2", "minilm")


def log_odds(entry: dict) -> np.ndarray:
    p = np.clip(calibrated(entry)[:, 0], 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def spectral_weights(z: np.ndarray) -> np.ndarray:
    """w_i = v_i / (1 - v_i^2) from the rank-one off-diagonal covariance of 3 judges."""
    c = np.cov(z)
    v = np.zeros(3)
    for i in range(3):
        j, k = (x for x in range(3) if x != i)
        v[i] = np.sqrt(max(c[i, j] * c[i, k] / c[j, k], 0.0)) if c[j, k] else 0.0
    v = np.minimum(v, 0.95)
    signs = np.sign([1.0, c[0, 1] or 1.0, c[0, 2] or 1.0])  # Gemma's direction
    return signs * v / (1 - v**2)


def main() -> None:
    path, dump = load(__doc__)
    text = review_field("reviewText")
    embedder = MiniLMEmbedder()
    settings = by_setting(dump, ANCHORS)
    lines = [
        "# Judges alone and combined without labels (ROC AUC of the yes side)\n",
        "| task | shots | rows | gemma | smollm2 | minilm | best single | mean | spectral "
        "| spectral weights (gemma, smollm2, minilm) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, list[float]] = {}
    for (task, shots), entries in settings.items():
        gemma, smol = entries["gemma"], entries["smollm2"]
        assert gemma["reviewId"] == smol["reviewId"]  # the same seeded sample of reviews
        gold = np.asarray(gemma["truth"], dtype=bool)
        vectors = embedder.embed([text[i] for i in gemma["reviewId"]])
        anchors = embedder.embed(list(ANCHORS[task]))
        sims = vectors @ anchors.T
        z = np.vstack(
            [
                standardise(log_odds(gemma)),
                standardise(log_odds(smol)),
                standardise(sims[:, 0] - sims[:, 1]),
            ]
        )
        w = spectral_weights(z)
        scores = {name: z[i] for i, name in enumerate(JUDGES)}
        scores["mean"] = z.mean(axis=0)
        scores["spectral"] = w @ z
        auc = {name: roc_auc_score(gold, s) for name, s in scores.items()}
        best = max(auc[j] for j in JUDGES)
        for name, value in [*auc.items(), ("best single", best)]:
            summary.setdefault(name, []).append(value)
        cells = " | ".join(f"{auc[j]:.3f}" for j in JUDGES)
        weights = ", ".join(f"{x:+.2f}" for x in w)
        lines.append(
            f"| {task} | {shots} | {len(gold)} | {cells} | {best:.3f} | {auc['mean']:.3f} "
            f"| {auc['spectral']:.3f} | {weights} |"
        )
    means = {k: np.mean(v) for k, v in summary.items()}
    lines.append(
        "| **mean** | | | "
        + " | ".join(f"{means[k]:.3f}" for k in (*JUDGES, "best single", "mean", "spectral"))
        + " | |"
    )
    publish(path, "judges", lines)


if __name__ == "__main__":
    main()
