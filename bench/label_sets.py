"""What closed sets with more labels, and labels of several tokens, cost in each recipe (#35).

A label of one token is read off the prompt's own output; a label of several tokens needs
its later tokens decoded after the prompt (label_scores.py). One row at a time every label
prefix is a sequence of its own sharing the row's cells, all in one decode
(``label_scores.BRANCH_SEQS`` to a decode); the arm "one row, a prefix a decode" runs
them one decode a prefix instead (BRANCH_SEQS = 1, the recipe before), to show what the
shared decode saves. A runtime of 8 rows a decode scores label sets of one token a label
in fixed-shape decodes (batch_scorer.py) and others one row at a time, as one-row
runtimes do (label_scores.batched; before BATCHED_DECODING 11 a label's later tokens were
further fixed-shape pieces, label-sets-20261207-170152 measured that). For label sets
of growing size and length, over ``--rows`` reviews outside SemBench's query movies,
this reports rows/s of each recipe (median of ``--rounds`` interleaved rounds), the extra
label tokens a row decodes, how many answers each recipe shares with the shipped one-row
recipe (other decode shapes, other numerics), and for a labelled set (sentiment in labels
of three tokens sharing their first) each recipe's accuracy against SemBench's labels
(scored only; nothing is chosen on them), so that where a recipe pays for a label set can
be read off.

    python bench/label_sets.py --rows 80 --rounds 3 --threads 2   # on an idle machine
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from lm_limits import reviews
from results_file import write_results

from semql.executors.runtimes import cpu_backend, label_scores
from semql.executors.runtimes.cpu_backend import BATCH_ROWS
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar.types import OptionsType
from semql.planner.physical.prompt_format import PromptBuilder

CALL_ROWS = 32  # rows a call, as the LM executor hands them over
LABEL_SETS = {
    "2 one-token": ("positive", "negative"),
    "6 one-token": ("positive", "negative", "mixed", "neutral", "angry", "bored"),
    "2 multi-token": ("thrilling adventure", "quiet drama"),
    "6 multi-token": (
        "thrilling adventure",
        "quiet drama",
        "romantic comedy",
        "horror film",
        "family animation",
        "true crime documentary",
    ),
    "2 labelled, 3 tokens": ("a positive review", "a negative review"),
}
LABELLED = "2 labelled, 3 tokens"  # (positive, negative): SemBench's own sentiment labels
QUESTIONS = {LABELLED: "Is this a positive or a negative review?"}
QUESTION = "What kind of film does the review describe?"
APART = "one row, a prefix a decode"


def rate(rt: LlamaRuntime, prompts: list, out_type: OptionsType) -> tuple[float, float, list]:
    """(rows/s, extra label tokens a row, each row's answer) of ``prompts`` in calls of
    CALL_ROWS rows."""
    rt.score_many(prompts[:4], out_type)  # grammar and head warm
    extra, answers = 0, []
    started = time.perf_counter()
    for i in range(0, len(prompts), CALL_ROWS):
        for s in rt.score_many(prompts[i : i + CALL_ROWS], out_type):
            extra += s.extra_steps
            answers.append(int(np.argmax(s.logprobs)))
    return len(prompts) / (time.perf_counter() - started), extra / len(prompts), answers


def rate_apart(rt: LlamaRuntime, prompts: list, out_type: OptionsType):
    """:func:`rate` with one decode a label prefix (the recipe before they shared one)."""
    shipped = label_scores.BRANCH_SEQS
    label_scores.BRANCH_SEQS = 1
    try:
        return rate(rt, prompts, out_type)
    finally:
        label_scores.BRANCH_SEQS = shipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    path = default_model_path()
    one = LlamaRuntime(path, n_threads=args.threads, batch_rows=1)
    recipes = {  # name: (runtime, how it is timed)
        "one row": (one, rate),
        APART: (one, rate_apart),
        f"{BATCH_ROWS} a decode": (
            LlamaRuntime(path, n_threads=args.threads, batch_rows=BATCH_ROWS),
            rate,
        ),
    }
    data = reviews(args.rows)
    texts, gold = [t for t, _ in data], [0 if g else 1 for _, g in data]  # label index
    runs: dict = {name: {r: [] for r in recipes} for name in LABEL_SETS}
    extra: dict = {name: {} for name in LABEL_SETS}
    answers: dict = {name: {} for name in LABEL_SETS}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits all alike
        for name, labels in LABEL_SETS.items():
            out_type = OptionsType(labels)
            for recipe, (rt, timed) in recipes.items():
                build = PromptBuilder(rt.style, rt.format_chat).build
                question = QUESTIONS.get(name, QUESTION)
                prompts = [build(question, out_type, ["reviewText"], [t]) for t in texts]
                rows_per_s, extra[name][recipe], got = timed(rt, prompts, out_type)
                runs[name][recipe].append(rows_per_s)
                if answers[name].setdefault(recipe, got) != got:
                    raise SystemExit(f"{name}, {recipe}: answers moved between rounds")
    flags = cpu_backend.simd_flags()
    lines = [
        "# Label sets: rows/s one row at a time and batched\n",
        f"`bench/label_sets.py`: {len(texts)} reviews outside SemBench's query movies, "
        f"bundled Gemma 3 270M Q4_K_M, {cpu_backend.cpu_model()} ({', '.join(flags)}), "
        f"extra buffer types {'on' if one.backend.extra_bufts else 'off'}, {args.threads} "
        f"threads, median of {args.rounds} interleaved rounds, {CALL_ROWS} rows a call.\n",
        "| label set | recipe | rows/s (median) | rounds | label tokens decoded a row "
        "| answers as one row | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in LABEL_SETS:
        for recipe in recipes:
            got = runs[name][recipe]
            rounds = ", ".join(f"{x:.2f}" for x in got)
            mine, shipped = answers[name][recipe], answers[name]["one row"]
            same = sum(a == b for a, b in zip(mine, shipped, strict=True))
            accuracy = (
                f"{np.mean([a == g for a, g in zip(mine, gold, strict=True)]):.3f}"
                if name == LABELLED
                else "-"
            )
            lines.append(
                f"| {name} | {recipe} | {statistics.median(got):.2f} | {rounds} | "
                f"{extra[name][recipe]:.2f} | {same}/{len(mine)} | {accuracy} |"
            )
    figures = {"rows": len(texts), "threads": args.threads, "simd": flags, "runs": runs}
    figures["extra_decodes"] = extra
    figures["answers"], figures["gold"] = answers, gold
    figures["label_sets"] = LABEL_SETS
    write_results(Path(args.out), "label-sets", figures, lines)


if __name__ == "__main__":
    main()
