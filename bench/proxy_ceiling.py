"""How many rows could any proxy answer at a 0.95 agreement target? A ceiling, measured.

The proxy must agree with the LM, so wherever the LM is wrong on a row the proxy finds
easy, a proxy that is right disagrees. This script labels every SemBench review with the
bundled model (the same LLMMap as bench/proxy_sentiment.py), embeds them with MiniLM, and
gives a classifier every LM label for free (5-fold out-of-fold predictions over all
distinct reviews): the rows it is most confident about, in order, are the best a proxy
could answer. The largest share whose disagreements with the LM stay within 5% of all
rows is the ceiling; the LM must answer the rest, before any label or verification cost.
It also reports how often the LM is wrong (against SemBench's ground truth) on those rows.

Then what the guarantee costs: the proxy executor's procedure (a uniform sample of LM
labels, cross-validated candidates, a fresh verification sample, the hypergeometric bound
at failure probability delta; executors/proxy/proxy_model.py) replayed on the same labels and
vectors over SEEDS random samples, at delta 0.05 (the default) and 0.2.

    python bench/proxy_ceiling.py --out bench/results/proxy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
from proxy_sentiment import QUERY
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

import semql
from semql.executors.proxy.embeddings import MiniLMEmbedder
from semql.executors.proxy.proxy_model import evaluate, verify_size, verify_threshold
from semql.planner.physical.prompt_format import field_block
from semql.sample import sample_dir

TARGET = 0.95
SHARES = (0.2, 0.3, 0.4, 0.5)
SEEDS = 8
DELTAS = (0.05, 0.2)


def ranked_disagreement(confidence: np.ndarray, wrong: np.ndarray, n_total: int) -> np.ndarray:
    """Disagreements (share of all rows) when the proxy answers its k most confident rows."""
    return np.cumsum(wrong[np.argsort(-confidence)]) / n_total


def replay(X: np.ndarray, lm: np.ndarray, seed: int, delta: float) -> tuple[float, float, float]:
    """(LM share, agreement with the LM, LM share under the best threshold in hindsight)
    of one proxy run, as executors/proxy/proxy_executor.py does it in its first round: sample,
    choose, fit, verify, answer above the threshold."""
    n = len(lm)
    order = np.random.default_rng(seed).permutation(n)
    size = max(100, n // 10)
    sample, rest = order[:size], order[size:]
    chosen = max(
        evaluate(X[sample], lm[sample], TARGET, "minilm", seed, len(rest) / n),
        key=lambda ev: ev.plan.coverage,
    )
    chosen.fit(X[sample], lm[sample])
    predicted, confidence = chosen.predict(X[rest])
    wrong = predicted != lm[rest]
    fits = np.flatnonzero(ranked_disagreement(confidence, wrong, n) <= 1 - TARGET)
    oracle = 1 - (int(fits.max()) + 1 if fits.size else 0) / n
    covered = np.flatnonzero(confidence >= chosen.plan.loosest)
    drawn = np.random.default_rng(seed + 1).choice(
        covered, verify_size(len(covered)), replace=False
    )
    verified = np.zeros(len(rest), dtype=bool)
    verified[drawn] = True
    disagree = verified & wrong
    result = verify_threshold(
        confidence, verified, disagree, chosen.plan.loosest, TARGET, n, delta=delta
    )
    if result.threshold is None:
        return 1.0, 1.0, oracle
    proxy = (confidence >= result.threshold) & ~verified
    return 1 - proxy.sum() / n, 1 - (proxy & wrong).sum() / n, oracle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/proxy")
    ap.add_argument("--labels", help="also write every row's LM label to this parquet file")
    args = ap.parse_args()
    con = semql.connect(cache=False)
    semql.load_sample(con)
    started = time.perf_counter()
    with_text = QUERY.replace("SELECT reviewId,", "SELECT reviewId, reviewText,")
    frame = con.query(with_text.format(extra=""))
    lm_seconds = time.perf_counter() - started
    truth = pl.read_csv(sample_dir() / "Reviews.csv").select("reviewId", "scoreSentiment")
    frame = frame.join(truth.unique("reviewId"), on="reviewId", maintain_order="left")
    if args.labels:
        frame.write_parquet(args.labels)
    distinct = frame.unique("reviewText", keep="first", maintain_order=True)
    lm = np.array(distinct["sentiment"].to_list(), dtype=object).astype(str)
    gold = np.array([s.lower() for s in distinct["scoreSentiment"].to_list()])
    texts = [field_block(["reviewText"], [t]) for t in distinct["reviewText"].to_list()]
    X = MiniLMEmbedder().embed(texts)
    n = len(lm)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    models = {
        "logistic": LogisticRegression(C=4.0, max_iter=2000),
        "linear_svm": CalibratedClassifierCV(LinearSVC(C=0.5), cv=3),
    }
    result = {
        "rows": frame.height,
        "distinct_reviews": n,
        "lm_seconds": round(lm_seconds, 1),
        "lm_accuracy_vs_truth": round(float((lm == gold).mean()), 4),
        "target": TARGET,
        "proxies": {},
    }
    for teacher, labels in (("lm_labels", lm), ("truth_labels", gold)):
        for name, model in models.items():
            proba = cross_val_predict(model, X, labels, cv=folds, method="predict_proba")
            classes = np.unique(labels)
            predicted, confidence = classes[proba.argmax(axis=1)], proba.max(axis=1)
            disagree = ranked_disagreement(confidence, predicted != lm, n)
            fits = np.flatnonzero(disagree <= 1 - TARGET)
            ceiling = (int(fits.max()) + 1) / n if fits.size else 0.0
            order = np.argsort(-confidence)
            at = {}
            for share in SHARES:
                top = order[: int(share * n)]
                at[f"{share:.0%}"] = {
                    "disagreement_share_of_rows": round(float(disagree[len(top) - 1]), 4),
                    "lm_wrong_vs_truth_on_these": round(float((lm[top] != gold[top]).mean()), 4),
                }
            result["proxies"][f"{name} trained on {teacher}"] = {
                "agreement_with_lm": round(float((predicted == lm).mean()), 4),
                "accuracy_vs_truth": round(float((predicted == gold).mean()), 4),
                "max_proxy_share": round(ceiling, 4),
                "min_lm_share": round(1 - ceiling, 4),
                "at_share": at,
            }
    for delta in DELTAS:
        runs = [replay(X, lm, seed, delta) for seed in range(SEEDS)]
        result[f"replay_delta_{delta:g}"] = {
            "lm_share": [round(float(r[0]), 3) for r in runs],
            "agreement": [round(float(r[1]), 3) for r in runs],
            "lm_share_oracle_threshold": [round(float(r[2]), 3) for r in runs],
        }
    con.close()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (folder / f"ceiling-{stamp}.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"## Proxy ceiling: {n} distinct reviews ({result['rows']} rows), target {TARGET}",
        "",
        f"LM (bundled) accuracy vs truth: {result['lm_accuracy_vs_truth']:.3f}; "
        "every LM label given to the proxy for free (5-fold out-of-fold).",
        "",
        "| proxy | agreement with LM | acc vs truth | max proxy share | min LM share | "
        "LM wrong vs truth on the proxy's top 40% |",
        "|---|---|---|---|---|---|",
    ]
    for name, p in result["proxies"].items():
        lines.append(
            f"| {name} | {p['agreement_with_lm']:.3f} | {p['accuracy_vs_truth']:.3f} | "
            f"{p['max_proxy_share']:.1%} | {p['min_lm_share']:.1%} | "
            f"{p['at_share']['40%']['lm_wrong_vs_truth_on_these']:.1%} |"
        )
    lines += ["", f"Replayed proxy runs, {SEEDS} random samples:", ""]
    for delta in DELTAS:
        got = result[f"replay_delta_{delta:g}"]
        lines.append(
            f"- delta {delta:g}: LM share mean {np.mean(got['lm_share']):.1%} "
            f"(min {min(got['lm_share']):.1%}, max {max(got['lm_share']):.1%}); agreement "
            f"min {min(got['agreement']):.3f}; the best threshold in hindsight would leave "
            f"{np.mean(got['lm_share_oracle_threshold']):.1%} to the LM"
        )
    (folder / f"ceiling-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
