"""Quality of closed-set answers: greedy vs whole-label scoring vs label-free calibrations.

Every labelled task we can build from the shipped SemBench movie data, several question
wordings, bool / options / a 1-5 scale, with and without few-shot examples, both bundled
models. For each row the runtime scores every label whole once (LlamaRuntime.score);
each method then decides from the same scores:

- ``off``: the label with the highest probability (what greedy decoding picks when
  labels are one token each, as here);
- ``content_free``: divided by the label distribution of content-free inputs ("N/A", "",
  "[MASK]") in the same prompt (SemQL's default);
- ``domain``: divided by the distribution of 8 random in-domain texts (words drawn from
  *other* rows' reviews, of typical length; Fei et al. 2023);
- ``batch``: divided by the mean distribution over the task's own rows (needs every row
  before answering any);
- baselines: ``majority`` (the most common true label: an oracle constant) and a
  keyword rule (positive/negative word lists) for the sentiment tasks.

Rows are split by movie into a *dev* half and a *test* half (hash of the movie id); the
method SemQL uses by default was chosen on dev and is reported on test. No labels are
used by any method. Scale tasks report Spearman of the argmax and of the expected value
against the critic's own score.

    python bench/closed_set_quality.py --rows 240 --out bench/results/quality
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import time
from pathlib import Path

import numpy as np

from semql.executors.lm.closed_set import CONTENT_FREE, probabilities
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import resolve_model_path
from semql.grammar.types import BoolType, OptionsType
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

SHOTS = {
    "bool": [
        ("A joyless, plodding mess that wastes its talented cast.", False),
        ("Funny, warm and beautifully made: a delight from start to finish.", True),
    ],
    "options": [
        ("A joyless, plodding mess that wastes its talented cast.", "negative"),
        ("Funny, warm and beautifully made: a delight from start to finish.", "positive"),
    ],
    "scale": [
        ("A joyless, plodding mess that wastes its talented cast.", 1),
        ("Competent and watchable, if forgettable.", 3),
        ("A thrilling, confident film that earns every one of its surprises.", 5),
    ],
}
# Examples are invented text (never rows of the data), with the answers each question needs.
GENRE_SHOTS = {
    "Horror": [
        ("Jump scares, a cursed house and a killer in the basement: genuinely creepy.", True),
        ("A warm romantic comedy about two rival bakers.", False),
    ],
    "Comedy": [
        ("I laughed from start to finish; the jokes land and the cast is hilarious.", True),
        ("A grim war drama about loss, told with restraint.", False),
    ],
}
POS_WORDS = "great good best brilliant funny delight wonderful enjoy fun superb excellent".split()
NEG_WORDS = "bad worst boring dull mess fails tedious disappointing waste poor awful".split()


def _positive(r):
    return r["scoreSentiment"] == "POSITIVE"


def _genre(name):
    return lambda r: name in r["genre"]


def _negated(shots):
    return [(text, not answer) for text, answer in shots]


# (task, kind, question, truth(row) -> label or score, few-shot examples)
TASKS = [
    ("pos_bool", "bool", "Is this movie review positive?", _positive, SHOTS["bool"]),
    ("likes_bool", "bool", "Did the critic like the movie?", _positive, SHOTS["bool"]),
    (
        "neg_bool",
        "bool",
        "Is this movie review negative?",
        lambda r: not _positive(r),
        _negated(SHOTS["bool"]),
    ),
    (
        "sentiment",
        "options",
        "What is the sentiment of this movie review?",
        _positive,
        SHOTS["options"],
    ),
    (
        "horror_bool",
        "bool",
        "Is this a review of a horror movie?",
        _genre("Horror"),
        GENRE_SHOTS["Horror"],
    ),
    (
        "comedy_bool",
        "bool",
        "Is this a review of a comedy?",
        _genre("Comedy"),
        GENRE_SHOTS["Comedy"],
    ),
    (
        "score",
        "scale",
        "Score from 1 to 5 how much the reviewer liked the movie.",
        None,
        SHOTS["scale"],
    ),
]


def score_of(text: str) -> float | None:
    """originalScore as a fraction (3/4, 7.5/10); letter grades and blanks -> None."""
    if "/" not in text:
        return None
    a, _, b = text.partition("/")
    try:
        return float(a) / float(b) if float(b) > 0 else None
    except ValueError:
        return None


def load_rows() -> list[dict]:
    movies = {m["id"]: m for m in csv.DictReader(open(sample_dir() / "Movies.csv"))}
    rows = []
    seen = set()
    for r in csv.DictReader(open(sample_dir() / "Reviews.csv")):
        if r["reviewText"] in seen or not r["reviewText"].strip():
            continue
        seen.add(r["reviewText"])
        r["genre"] = movies.get(r["id"], {}).get("genre", "")
        r["split"] = "dev" if hashlib.sha256(r["id"].encode()).digest()[0] % 2 else "test"
        rows.append(r)
    return rows


def out_type_of(kind: str):
    if kind == "bool":
        return BoolType()
    if kind == "options":
        return OptionsType(("positive", "negative"))
    return OptionsType((1, 2, 3, 4, 5))


def domain_texts(rows: list[dict], n: int, rng: random.Random) -> list[str]:
    words = [w for r in rows for w in r["reviewText"].split()]
    length = int(np.mean([len(r["reviewText"].split()) for r in rows]))
    return [" ".join(rng.choice(words) for _ in range(length)) for _ in range(n)]


def truth_value(task, kind, row):
    if kind == "scale":
        return score_of(row["originalScore"])
    return bool(task[3](row))


def is_true_label(kind: str, label) -> bool:
    return label in (True, "positive")


def keyword_rule(text: str) -> bool:
    words = text.lower().split()
    score = sum(w.strip(".,!?") in POS_WORDS for w in words)
    score -= sum(w.strip(".,!?") in NEG_WORDS for w in words)
    return score >= 0


def macro_f1(pred: list[bool], gold: list[bool]) -> float:
    f1s = []
    for cls in (True, False):
        tp = sum(p == cls and g == cls for p, g in zip(pred, gold, strict=True))
        fp = sum(p == cls and g != cls for p, g in zip(pred, gold, strict=True))
        fn = sum(p != cls and g == cls for p, g in zip(pred, gold, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s))


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    if len(set(a)) < 2:
        return 0.0
    return float(spearmanr(a, b).statistic)


def run_model(
    model: str, rows: list[dict], n: int, seed: int, raw: list[dict], style: str = "auto"
) -> list[dict]:
    """Score every task; per-row label distributions go to ``raw`` (for re-analysis).
    ``style``: the model's own prompt style (``auto``: its chat template if it has one),
    or ``completion`` / ``chat`` forced, to compare the two on the same rows."""
    runtime = LlamaRuntime(model, batch_rows=1)  # as the stored runs were scored
    chosen = runtime.style if style == "auto" else style
    if chosen == "chat" and not runtime.chat_template:
        raise SystemExit(f"{model} has no chat template")
    builder = PromptBuilder(chosen, runtime.format_chat)
    label = os.path.basename(model) + ("" if style == "auto" else f" ({chosen})")
    rng = random.Random(seed)
    results = []
    for task in TASKS:
        name, kind, question, _, shots_of_task = task
        pool = [r for r in rows if truth_value(task, kind, r) is not None]
        sample = random.Random(seed).sample(pool, min(n, len(pool)))
        out_type = out_type_of(kind)
        labels = out_type.labels()
        values = list(out_type.values) if kind != "bool" else [True, False]
        for shots in ("0-shot", "few-shot"):
            examples = shots_of_task if shots == "few-shot" else []

            def dist(text, examples=examples, out_type=out_type, question=question):
                prompt = builder.build(question, out_type, ["reviewText"], [text], examples)
                return probabilities(runtime.score(prompt, out_type).logprobs)

            started = time.perf_counter()
            probs = np.vstack([dist(r["reviewText"]) for r in sample])
            seconds = time.perf_counter() - started
            cf = np.mean([dist(v) for v in CONTENT_FREE], axis=0)
            dom = np.mean([dist(t) for t in domain_texts(rows, 8, rng)], axis=0)
            raw.append(
                {
                    "model": label,
                    "task": name,
                    "shots": shots,
                    "probs": probs.round(5).tolist(),
                    "content_free": cf.tolist(),
                    "domain": dom.tolist(),
                    "truth": [truth_value(task, kind, r) for r in sample],
                    "split": [r["split"] for r in sample],
                    "reviewId": [r["reviewId"] for r in sample],
                }
            )
            for split in ("dev", "test", "all"):
                idx = [i for i, r in enumerate(sample) if split == "all" or r["split"] == split]
                p = probs[idx]
                gold = [truth_value(task, kind, sample[i]) for i in idx]
                priors = {
                    "off": np.ones(len(labels)),
                    "content_free": cf,
                    "domain": dom,
                    "batch": p.mean(axis=0),
                }
                entry = {
                    "model": label,
                    "task": name,
                    "kind": kind,
                    "question": question,
                    "shots": shots,
                    "split": split,
                    "rows": len(idx),
                    "lm_seconds": round(seconds, 1),
                    "content_free_prior": [round(float(x), 3) for x in cf],
                    "domain_prior": [round(float(x), 3) for x in dom],
                }
                for method, prior in priors.items():
                    q = p / np.maximum(prior, 1e-9)
                    q = q / q.sum(axis=1, keepdims=True)
                    pick = [values[j] for j in q.argmax(axis=1)]
                    if kind == "scale":
                        ev = q @ np.asarray(values, dtype=float)
                        entry[f"{method}_spearman_argmax"] = round(spearman(pick, gold), 3)
                        entry[f"{method}_spearman_ev"] = round(spearman(list(ev), gold), 3)
                        entry[f"{method}_top_share"] = round(
                            max(pick.count(v) for v in values) / len(pick), 3
                        )
                        continue
                    pred = [is_true_label(kind, v) for v in pick]
                    entry[f"{method}_acc"] = round(
                        float(np.mean([a == b for a, b in zip(pred, gold, strict=True)])), 3
                    )
                    entry[f"{method}_f1"] = round(macro_f1(pred, gold), 3)
                    entry[f"{method}_true_share"] = round(float(np.mean(pred)), 3)
                if kind != "scale":
                    entry["truth_true_share"] = round(float(np.mean(gold)), 3)
                    major = np.mean(gold) >= 0.5
                    entry["majority_acc"] = round(float(np.mean([g == major for g in gold])), 3)
                    entry["majority_f1"] = round(macro_f1([major] * len(gold), gold), 3)
                    if name in ("pos_bool", "likes_bool", "sentiment", "neg_bool"):
                        kw = [keyword_rule(sample[i]["reviewText"]) for i in idx]
                        if name == "neg_bool":
                            kw = [not k for k in kw]
                        entry["keyword_acc"] = round(
                            float(np.mean([a == b for a, b in zip(kw, gold, strict=True)])), 3
                        )
                        entry["keyword_f1"] = round(macro_f1(kw, gold), 3)
                results.append(entry)
            print(json.dumps({k: v for k, v in results[-1].items() if k != "question"}), flush=True)
    runtime.close()
    return results


METHODS = ("off", "content_free", "domain", "batch")


def short_name(model: str) -> str:
    """A model's file name cut to 14 characters, with its forced prompt style if any."""
    base, _, style = model.partition(" (")
    return base[:14] + (f" ({style}" if style else "")


def table(results: list[dict], split: str) -> list[str]:
    lines = [
        f"## split: {split} (macro-F1 for classification, Spearman of the expected value "
        "for the scale)\n",
        "| model | task | shots | rows | " + " | ".join(METHODS) + " | majority | keyword |",
        "|---|---|---|---|" + "---|" * (len(METHODS) + 2),
    ]
    for e in results:
        if e["split"] != split:
            continue
        if e["kind"] == "scale":
            cells = [f"{e[f'{m}_spearman_ev']:.3f}" for m in METHODS] + ["–", "–"]
        else:
            cells = [f"{e[f'{m}_f1']:.3f}" for m in METHODS]
            keyword = f"{e['keyword_f1']:.3f}" if "keyword_f1" in e else "–"
            cells += [f"{e['majority_f1']:.3f}", keyword]
        lines.append(
            f"| {short_name(e['model'])} | {e['task']} | {e['shots']} | {e['rows']} | "
            + " | ".join(cells)
            + " |"
        )
    for model in dict.fromkeys(e["model"] for e in results):  # a mean per model and style
        means = []
        for m in METHODS:
            vals = [
                e[f"{m}_spearman_ev"] if e["kind"] == "scale" else e[f"{m}_f1"]
                for e in results
                if e["split"] == split and e["model"] == model
            ]
            means.append(f"{np.mean(vals):.3f}")
        lines.append(f"| **mean** {short_name(model)} | | | | " + " | ".join(means) + " | | |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=240)
    ap.add_argument("--models", default="gemma3-270m,smollm2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/quality")
    ap.add_argument(
        "--styles",
        default="auto",
        help="comma-separated prompt styles per model: auto (the model's own), completion, chat",
    )
    args = ap.parse_args()
    rows = load_rows()
    results: list[dict] = []
    raw: list[dict] = []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in args.models.split(","):
        path = resolve_model_path(name)
        for style in args.styles.split(","):
            results += run_model(path, rows, args.rows, args.seed, raw, style)
            (out / f"quality-{stamp}-rows.json").write_text(json.dumps(raw))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"quality-{stamp}.json").write_text(json.dumps(results, indent=1))
    title = f"# Closed-set quality by decision method ({args.rows} rows a task, seed {args.seed})"
    lines = [title + "\n"]
    for split in ("dev", "test"):
        lines += table(results, split) + [""]
    (out / f"quality-{stamp}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
