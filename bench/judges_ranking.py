"""Precision-first LIMIT ranked by the LM alone and with the embedding judge, from stored
label scores.

Precision-first LIMIT (planner.logical.RankLimit) returns the k passing rows ranked
highest. This replays it on the stored per-row label scores of
bench/closed_set_quality.py (both bundled LMs, content-free calibration), with exactly
what queries do (executors/lm/embedding_judge.py): the LM's answer and calibrated
confidence per row, the bundled MiniLM's margin for that answer against anchors taken
from the query alone (an options call's labels; a yes/no call's examples; none for a
zero-shot yes/no call, which is then ranked by the LM alone), both standardised over the
candidates, averaged.

Rows of SemBench's query movies are left out. Each draw is a query's candidate rows:
every negative row and positives cut to 25% and to 12% (taken_3, the demo's movie, has
12%; a task with fewer positives keeps its own share, one row in the table). The rows
whose answer is the yes-side label pass; the top k of them are scored against the labels
(the only use of labels).

    python bench/judges_ranking.py bench/results/quality/quality-...-rows.json
"""

from __future__ import annotations

import numpy as np
from closed_set_quality import TASKS, out_type_of
from stored_scores import QUERY_MOVIES, by_setting, calibrated, load, publish, review_field

from semql.executors.lm.embedding_judge import anchors, combined, margins
from semql.executors.proxy.embeddings import MiniLMEmbedder

KS = (3, 5)
DRAWS = 200
SHARES = (0.25, 0.12)
MODELS = ("gemma", "smollm2")
KINDS = {name: (kind, shots) for name, kind, _, _, shots in TASKS if kind != "scale"}


def replay(conf, judged, passing, gold, share, k, rng) -> tuple[float, float, float]:
    """Mean precision@k of the LM's ranking and of the combined one; the share used."""
    rows = np.arange(len(gold))
    pos, neg = rows[gold], rows[~gold]
    share = min(share, gold.mean())
    keep = min(len(pos), int(round(share * len(neg) / (1 - share))))
    lm, both = [], []
    for _ in range(DRAWS):
        draw = np.concatenate([neg, rng.choice(pos, keep, replace=False)])
        ok = np.flatnonzero(passing[draw])
        if len(ok) < k:
            continue
        mixed = combined(list(conf[draw]), judged[draw])
        for out, score in ((lm, conf[draw]), (both, mixed)):
            top = ok[np.argsort(-score[ok], kind="stable")[:k]]
            out.append(float(gold[draw][top].mean()))
    nan = float("nan")
    return (float(np.mean(lm)) if lm else nan, float(np.mean(both)) if both else nan, share)


def main() -> None:
    path, dump = load(__doc__)
    text, movie = review_field("reviewText"), review_field("id")
    embedder = MiniLMEmbedder()
    header = " | ".join(f"{m} | {m}+minilm" for m in MODELS)
    lines = [
        "# Precision-first LIMIT: the LM's ranking vs the LM with the embedding judge\n",
        f"Precision@k, mean over {DRAWS} seeded draws of candidates; rows of the query "
        "movies left out. `=`: no anchors in the query, ranked by the LM alone.\n",
    ]
    rng = np.random.default_rng(0)
    means: dict[tuple, list[float]] = {}
    for k in KS:
        lines += [f"\n## k = {k}\n", f"| task | shots | positives | {header} |", "|---" * 7 + "|"]
        for (task, shots), entries in by_setting(dump, set(KINDS)).items():
            kind, task_shots = KINDS[task]
            out_type = out_type_of(kind)
            values = [True, False] if kind == "bool" else list(out_type.values)
            first = entries["gemma"]
            idx = [i for i, r in enumerate(first["reviewId"]) if movie[r] not in QUERY_MOVIES]
            gold = np.asarray(first["truth"], dtype=bool)[idx]
            texts = [text[first["reviewId"][i]] for i in idx]
            anchor_texts = anchors(out_type, task_shots if shots == "few-shot" else [])
            cells = []
            for model in MODELS:
                q = calibrated(entries[model])[idx]
                answers = [values[j] for j in q.argmax(axis=1)]
                conf = q.max(axis=1)
                judged = (
                    margins(embedder.embed, texts, answers, anchor_texts)
                    if anchor_texts
                    else np.full(len(idx), np.nan)
                )
                passing = np.asarray([a == values[0] for a in answers])
                for share in SHARES:
                    lm, both, used = replay(conf, judged, passing, gold, share, k, rng)
                    means.setdefault((k, share, model, "lm"), []).append(lm)
                    means.setdefault((k, share, model, "both"), []).append(both)
                    cells.append((share, used, lm, both, anchor_texts is None))
            shown_shares: set[float] = set()
            for share in SHARES:
                row = [c for c in cells if c[0] == share]
                if row[0][1] in shown_shares:
                    continue  # a task with fewer positives than the cut: one row
                shown_shares.add(row[0][1])
                shown = " | ".join(
                    f"{lm:.3f} | {'=' if none else f'{both:.3f}'}" for _, _, lm, both, none in row
                )
                lines.append(f"| {task} | {shots} | {row[0][1]:.0%} | {shown} |")
        lines.append("")
        for share in SHARES:
            parts = [
                f"{m} {np.nanmean(means[(k, share, m, 'lm')]):.3f} -> "
                f"{np.nanmean(means[(k, share, m, 'both')]):.3f}"
                for m in MODELS
            ]
            lines.append(f"- k={k}, positives cut to {share:.0%}, mean: {'; '.join(parts)}")
    publish(path, "judges-ranking", lines)


if __name__ == "__main__":
    main()
