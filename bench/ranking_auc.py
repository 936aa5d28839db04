"""How well each judge *ranks* rows, apart from where it cuts: ROC AUC per task.

Reads the per-row label distributions that bench/closed_set_quality.py stored (the LM's
raw and content-free calibrated p(first label)) and adds a zero-shot MiniLM judge: the
cosine similarity of a review to its task's label words minus the similarity to the
other label's. AUC needs no threshold, so it separates "the model cannot tell the rows
apart" from "the model puts the cut in the wrong place".

    python bench/ranking_auc.py bench/results/quality/quality-...-rows.json
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from stored_scores import ANCHORS, calibrated, load, publish, review_field

from semql.executors.proxy.embeddings import MiniLMEmbedder


def main() -> None:
    path, dump = load(__doc__)
    text = review_field("reviewText")
    embedder = MiniLMEmbedder()
    out = []
    for entry in dump:
        if entry["task"] not in ANCHORS:
            continue
        gold = np.asarray(entry["truth"], dtype=bool)
        probs = np.asarray(entry["probs"])
        calibrated_probs = calibrated(entry)
        vectors = embedder.embed([text[i] for i in entry["reviewId"]])
        anchors = embedder.embed(list(ANCHORS[entry["task"]]))
        sims = vectors @ anchors.T
        out.append(
            {
                "model": entry["model"],
                "task": entry["task"],
                "shots": entry["shots"],
                "rows": len(gold),
                "lm_auc": round(float(roc_auc_score(gold, probs[:, 0])), 3),
                "lm_calibrated_auc": round(float(roc_auc_score(gold, calibrated_probs[:, 0])), 3),
                "minilm_zero_shot_auc": round(
                    float(roc_auc_score(gold, sims[:, 0] - sims[:, 1])), 3
                ),
            }
        )
    lines = [
        "| model | task | shots | rows | LM AUC | LM calibrated AUC | MiniLM zero-shot AUC |",
        "|---|---|---|---|---|---|---|",
    ] + [
        f"| {e['model'][:14]} | {e['task']} | {e['shots']} | {e['rows']} | {e['lm_auc']} | "
        f"{e['lm_calibrated_auc']} | {e['minilm_zero_shot_auc']} |"
        for e in out
    ]
    publish(path, "auc", lines)


if __name__ == "__main__":
    main()
