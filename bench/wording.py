"""How much answers depend on the wording: label scores for many wordings of each task.

A user writes a question once and cannot check it against labels, so a decision method
is judged by its mean quality over many wordings of the same task and by the spread
between them (worst wording, standard deviation), not on one wording. This bench stores,
for every task we can label from the shipped reviews, 6 question wordings x 3 example
sets (none; two easy examples; four borderline ones in another order), each row's
whole-label log-probabilities and those of the content-free prompts, from the real
runtime and the prompts queries use. Decision methods are then replayed on the stored
scores through the engine's own code (executors/lm/closed_set.py).

Everything here was written before any of it was measured. Wordings vary in length,
vocabulary and label words (options in other cases and other words); examples are
invented texts, never rows of the data. The last two wordings of every task (a third)
are the *test* part: nothing may be chosen by looking at their results. Rows are a
seeded sample of distinct reviews of movies SemBench's queries do not ask about.

    python bench/wording.py --models gemma3-270m,smollm2 --rows 120 --out bench/results/wording
    python bench/wording.py --models smollm2 --tasks "sentiment options,score 1-5"
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import numpy as np
from closed_set_quality import score_of
from stored_scores import QUERY_MOVIES

from semql.executors.lm.closed_set import CONTENT_FREE
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import resolve_model_path
from semql.grammar.types import BoolType, OptionsType
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

TEST_WORDINGS = 2  # the last two of each task's six
FIELD = "reviewText"

# Invented example texts: (text, polarity from 1 = worst to 5 = best).
EASY = [
    ("An absolute triumph: moving, funny and gorgeously shot.", 5),
    ("Dreadful from the first scene to the last; I wanted to leave.", 1),
]
BORDERLINE = [
    ("It has its moments, but the second half drags and the ending falls flat.", 2),
    ("Uneven and overlong, yet the lead performance makes it worth a look.", 4),
    ("Not much new here, though fans of the genre will have a decent time.", 3),
    ("A few good jokes cannot save a lazy, muddled script.", 2),
]
EXAMPLE_SETS = {"none": [], "easy": EASY, "borderline": BORDERLINE}

# task -> (kind, [(wording, label words or None for yes/no)]); first label = positive side
TASKS = {
    "positive yes/no": (
        "bool",
        [
            ("Is this review positive?", None),
            ("Did the critic like the film?", None),
            ("Would the author of this review recommend the movie to a friend?", None),
            ("Positive review?", None),
            (
                "Read the following film critique carefully. Does the critic express an "
                "overall favourable opinion of the movie?",
                None,
            ),
            ("Is the reviewer's verdict on this movie a thumbs up?", None),
        ],
    ),
    "negative yes/no": (
        "bool-negated",
        [
            ("Is this review negative?", None),
            ("Did the critic dislike the film?", None),
            ("Is the critic disappointed by this movie?", None),
            ("Negative review?", None),
            (
                "Read the following film critique carefully. Does the critic express an "
                "overall unfavourable opinion of the movie?",
                None,
            ),
            ("Is the reviewer's verdict on this movie a thumbs down?", None),
        ],
    ),
    "sentiment options": (
        "options",
        [
            ("What is the sentiment of this review?", ("positive", "negative")),
            ("How does the critic feel about the movie?", ("positive", "negative")),
            ("Classify the review.", ("Positive", "Negative")),
            ("Sentiment?", ("POSITIVE", "NEGATIVE")),
            (
                "Is the critic's overall opinion of the film favourable or unfavourable?",
                ("favourable", "unfavourable"),
            ),
            (
                "Read the following film critique and decide whether its tone is good or bad.",
                ("good", "bad"),
            ),
        ],
    ),
    "score 1-5": (
        "scale",
        [
            ("Score from 1 to 5 how much the reviewer liked the movie.", None),
            ("How many stars (1-5) does the critic give the film?", None),
            (
                "Rate the review's opinion of the movie on a scale of 1 (hated it) to "
                "5 (loved it).",
                None,
            ),
            ("Rating 1-5?", None),
            (
                "Read the following film critique carefully and say how positive it is, from "
                "1 for a pan to 5 for a rave.",
                None,
            ),
            ("On a five-point scale, how much did this critic enjoy the movie?", None),
        ],
    ),
}


def out_type_of(kind: str, labels) -> BoolType | OptionsType:
    if kind.startswith("bool"):
        return BoolType()
    if kind == "options":
        return OptionsType(tuple(labels))
    return OptionsType((1, 2, 3, 4, 5), expected=True)


def example_answer(kind: str, labels, polarity: int):
    """An example's answer in the task's own terms (3 = mixed: negative for yes/no)."""
    positive = polarity >= 4
    if kind == "bool":
        return positive
    if kind == "bool-negated":
        return not positive
    if kind == "options":
        return labels[0] if positive else labels[1]
    return polarity


def candidate_rows() -> list[dict]:
    """Distinct reviews of movies SemBench's queries do not ask about, in file order."""
    seen, rows = set(), []
    for r in csv.DictReader(open(sample_dir() / "Reviews.csv")):
        text = r["reviewText"].strip()
        if r["id"] in QUERY_MOVIES or not text or text in seen:
            continue
        seen.add(text)
        rows.append(r)
    return rows


def load_rows(n: int, seed: int) -> list[dict]:
    return random.Random(seed).sample(candidate_rows(), n)


def more_negative_rows(n: int, seed: int, taken: set[str]) -> list[dict]:
    """``n`` more negative reviews, seeded, none of them already ``taken``: with them the
    report can score each method on mostly-negative, balanced and mostly-positive
    populations (a random sample of reviews is about 86% positive, which rewards a
    method that leans positive and hides what it does on a movie most critics panned)."""
    pool = [
        r
        for r in candidate_rows()
        if r["scoreSentiment"] == "NEGATIVE" and r["reviewId"] not in taken
    ]
    return random.Random(seed + 1).sample(pool, n)


def truth(kind: str, row: dict):
    positive = row["scoreSentiment"] == "POSITIVE"
    if kind == "scale":
        return score_of(row["originalScore"])
    return not positive if kind == "bool-negated" else positive


def scorer(runtime, builder, task: str, wording: int, examples: str):
    """``text -> label log-probabilities`` of one setting's prompt, as queries build it
    (the same for a first run and for rows added to it later)."""
    kind, wordings = TASKS[task]
    question, labels = wordings[wording]
    out_type = out_type_of(kind, labels)
    shots = [(t, example_answer(kind, labels, p)) for t, p in EXAMPLE_SETS[examples]]

    def logprobs(text: str) -> list[float]:
        prompt = builder.build(question, out_type, [FIELD], [text], shots)
        return runtime.score(prompt, out_type).logprobs

    return logprobs


def add_rows(path: Path, model: str, rows: list[dict]) -> None:
    """Append ``rows``' scores to every setting of ``model`` in a stored rows file."""
    doc = json.loads(path.read_text())
    runtime = LlamaRuntime(model, batch_rows=1)  # as the stored runs were scored
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    for entry in doc["settings"]:
        if entry["model"] != runtime.name:
            continue
        stored = set(entry["reviewId"])
        new = [r for r in rows if r["reviewId"] not in stored]
        logprobs = scorer(runtime, builder, entry["task"], entry["wording"], entry["examples"])
        for r in new:
            entry["logprobs"].append(np.round(logprobs(r["reviewText"]), 5).tolist())
            entry["truth"].append(truth(entry["kind"], r))
            entry["reviewId"].append(r["reviewId"])
        print(
            f"{runtime.name} | {entry['task']} | {entry['wording']} | {entry['examples']}: "
            f"+{len(new)} rows",
            flush=True,
        )
        path.write_text(json.dumps(doc))
    runtime.close()


def run_model(model: str, tasks: list[str], rows: list[dict], raw: list[dict], progress) -> None:
    runtime = LlamaRuntime(model, batch_rows=1)  # as the stored runs were scored
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    for task in tasks:
        kind, wordings = TASKS[task]
        for w, (question, labels) in enumerate(wordings):
            out_type = out_type_of(kind, labels)
            for set_name in EXAMPLE_SETS:
                logprobs = scorer(runtime, builder, task, w, set_name)
                started = time.perf_counter()
                scores = [logprobs(r["reviewText"]) for r in rows]
                seconds = time.perf_counter() - started
                raw.append(
                    {
                        "model": runtime.name,
                        "task": task,
                        "kind": kind,
                        "wording": w,
                        "part": "test" if w >= len(wordings) - TEST_WORDINGS else "dev",
                        "question": question,
                        "labels": out_type.labels(),
                        "examples": set_name,
                        "logprobs": np.round(scores, 5).tolist(),
                        "content_free": [logprobs(v) for v in CONTENT_FREE],
                        "truth": [truth(kind, r) for r in rows],
                        "reviewId": [r["reviewId"] for r in rows],
                        "seconds": round(seconds, 2),
                    }
                )
                progress(raw[-1])
    runtime.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="gemma3-270m,smollm2")
    ap.add_argument("--rows", type=int, default=120)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--out", default="bench/results/wording")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    ap.add_argument(
        "--add-negatives",
        type=int,
        metavar="N",
        help="with --to ROWS_JSON: append N more negative reviews' scores, for --models",
    )
    ap.add_argument("--to", type=Path, metavar="ROWS_JSON")
    args = ap.parse_args()
    if args.add_negatives and args.to is None:
        ap.error("--add-negatives needs --to ROWS_JSON, the stored run to extend")
    if args.add_negatives:
        doc = json.loads(args.to.read_text())
        taken = {r["reviewId"] for r in load_rows(doc["rows"], doc["seed"])}
        extra = more_negative_rows(args.add_negatives, doc["seed"], taken)
        doc["negatives_added"] = args.add_negatives
        args.to.write_text(json.dumps(doc))
        for name in args.models.split(","):
            add_rows(args.to, resolve_model_path(name), extra)
        return
    tasks = args.tasks.split(",")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        ap.error(f"unknown task(s) {unknown}; known: {list(TASKS)}")
    rows = load_rows(args.rows, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"wording-{time.strftime('%Y%m%d-%H%M%S')}-rows.json"
    raw: list[dict] = []

    def progress(entry: dict) -> None:
        target.write_text(json.dumps({"rows": args.rows, "seed": args.seed, "settings": raw}))
        print(
            f"{entry['model']} | {entry['task']} | wording {entry['wording']} | "
            f"{entry['examples']}: {entry['seconds']:.0f} s",
            flush=True,
        )

    for name in args.models.split(","):
        run_model(resolve_model_path(name), tasks, rows, raw, progress)
    print(f"stored {len(raw)} settings in {target}")


if __name__ == "__main__":
    main()
