"""What closed sets with more labels, and labels of several tokens, cost in each recipe (#35).

A label of one token is read off the prompt's own output; a label of several tokens needs
a decode for each of its later tokens (label_scores.py). One row at a time those are
single-token decodes of the row alone, each with a 262k-entry output; 8 rows a decode
(batch_scorer.py) they are further fixed-shape pieces shared by 8 rows. For label sets of
growing size and length, over ``--rows`` reviews outside SemBench's query movies, this
reports rows/s of both recipes (median of ``--rounds`` interleaved rounds) and the extra
decodes a row needs, so that where batching pays for a label set can be read off.

    python bench/label_sets.py --rows 80 --rounds 3 --threads 2   # on an idle machine
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from lm_limits import reviews
from results_file import write_results

from semql.executors.runtimes import cpu_backend
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
}
QUESTION = "What kind of film does the review describe?"


def rate(rt: LlamaRuntime, prompts: list, out_type: OptionsType) -> tuple[float, float]:
    """(rows/s, extra decodes a row) of ``prompts`` in calls of CALL_ROWS rows."""
    rt.score_many(prompts[:4], out_type)  # grammar and head warm
    extra = 0
    started = time.perf_counter()
    for i in range(0, len(prompts), CALL_ROWS):
        extra += sum(s.extra_steps for s in rt.score_many(prompts[i : i + CALL_ROWS], out_type))
    return len(prompts) / (time.perf_counter() - started), extra / len(prompts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    path = default_model_path()
    recipes = {
        "one row": LlamaRuntime(path, n_threads=args.threads, batch_rows=1),
        f"{BATCH_ROWS} a decode": LlamaRuntime(path, n_threads=args.threads, batch_rows=BATCH_ROWS),
    }
    texts = [t for t, _ in reviews(args.rows)]
    runs: dict = {name: {r: [] for r in recipes} for name in LABEL_SETS}
    extra: dict = {name: {} for name in LABEL_SETS}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits all alike
        for name, labels in LABEL_SETS.items():
            out_type = OptionsType(labels)
            for recipe, rt in recipes.items():
                build = PromptBuilder(rt.style, rt.format_chat).build
                prompts = [build(QUESTION, out_type, ["reviewText"], [t]) for t in texts]
                rows_per_s, extra[name][recipe] = rate(rt, prompts, out_type)
                runs[name][recipe].append(rows_per_s)
    flags = cpu_backend.simd_flags()
    one = recipes["one row"]
    lines = [
        "# Label sets: rows/s one row at a time and batched\n",
        f"`bench/label_sets.py`: {len(texts)} reviews outside SemBench's query movies, "
        f"bundled Gemma 3 270M Q4_K_M, {cpu_backend.cpu_model()} ({', '.join(flags)}), "
        f"extra buffer types {'on' if one.backend.extra_bufts else 'off'}, {args.threads} "
        f"threads, median of {args.rounds} interleaved rounds, {CALL_ROWS} rows a call.\n",
        "| label set | recipe | rows/s (median) | rounds | extra decodes a row |",
        "|---|---|---|---|---|",
    ]
    for name in LABEL_SETS:
        for recipe in recipes:
            got = runs[name][recipe]
            rounds = ", ".join(f"{x:.2f}" for x in got)
            lines.append(
                f"| {name} | {recipe} | {statistics.median(got):.2f} | {rounds} | "
                f"{extra[name][recipe]:.2f} |"
            )
    figures = {"rows": len(texts), "threads": args.threads, "simd": flags, "runs": runs}
    figures["extra_decodes"] = extra
    figures["label_sets"] = LABEL_SETS
    write_results(Path(args.out), "label-sets", figures, lines)


if __name__ == "__main__":
    main()
