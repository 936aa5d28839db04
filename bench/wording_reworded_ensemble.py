"""An ensemble over rewordings the engine writes itself: does it shrink the spread?

No cut removes the spread between wordings (bench/wording_cut_bound.py); what is left is
how each wording ranks the rows. Averaging over several wordings of the same question
changes the ranking, but the engine has only the user's. Here the bundled instruct model
(SmolLM2, the only bundled model that rewords at all: bench/paraphrase_probe.py) writes
two rewordings of each dev question, greedy, with two invented few-shot pairs each;
Gemma answers every row under the user's wording and both rewordings; each wording is
calibrated with its own table prior (the engine's default) and the calibrated
distributions are averaged. Three times the LM calls.

Dev wordings only (nothing here may look at the test part), examples none, the two tasks
whose questions can be reworded without their labels (positive yes/no, sentiment
options); rows, populations and measures as bench/wording_report.py.

    python bench/wording_reworded_ensemble.py --out bench/results/wording
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from closed_set_quality import macro_f1
from llama_cpp import Llama
from paraphrase_probe import SHOTS, reword
from results_file import write_results
from wording import FIELD, TASKS, TEST_WORDINGS, load_rows, more_negative_rows, out_type_of, truth
from wording_report import _table, count_quality, mean_and_spread, populations

from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import resolve_model_path
from semql.planner.physical.prompt_format import PromptBuilder

SECOND_SHOTS = [
    ("Was the package delivered on time?", "Did the parcel arrive when it was supposed to?"),
    ("Is the tone of the letter angry?", "Does the letter sound angry?"),
]
TASK_NAMES = ("positive yes/no", "sentiment options")
ROWS, NEGATIVES, SEED = 120, 60, 20261203  # the rows of the stored wording run


def rewordings(questions: list[str]) -> dict[str, list[str]]:
    """Two rewordings of each question by SmolLM2 (the question itself where it echoes)."""
    llm = Llama(str(resolve_model_path("smollm2")), n_ctx=1024, n_threads=2, verbose=False)
    out = {}
    for q in questions:
        texts = [
            reword(llm, "chat", q, shots).split("\n")[0].strip() for shots in (SHOTS, SECOND_SHOTS)
        ]
        out[q] = [t if t and t.lower() != q.lower() else q for t in texts]
    llm.close()
    return out


def settings() -> list[tuple[str, str, int, str, tuple | None]]:
    picked = []
    for task in TASK_NAMES:
        kind, wordings = TASKS[task]
        for w, (question, labels) in enumerate(wordings[: len(wordings) - TEST_WORDINGS]):
            picked.append((task, kind, w, question, labels))
    return picked


def quality(kind: str, gold_of: list, scores: dict) -> list[dict]:
    """Per-row macro-F1 and count quality of each wording alone and of the averages."""
    entry = {"kind": kind, "truth": gold_of}
    z = {k: np.asarray(v) for k, v in scores.items()}
    out = []
    for population, index in populations(entry, ROWS).items():
        gold = np.asarray([gold_of[i] for i in index], dtype=bool)
        q = {k: _table(v[index], entry, v[:ROWS]) for k, v in z.items()}
        combos = {
            "user's wording": q["user"],
            "first rewording alone": q["r1"],
            "user + first rewording": (q["user"] + q["r1"]) / 2,
            "user + both rewordings": (q["user"] + q["r1"] + q["r2"]) / 3,
        }
        for name, dist in combos.items():
            pred = dist.argmax(axis=1) == 0
            out.append(
                {
                    "population": population,
                    "method": name,
                    "rows": macro_f1(list(pred), list(gold)),
                    "count": count_quality(float(pred.sum()), float(gold.sum())),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/wording"))
    args = parser.parse_args()
    rows = load_rows(ROWS, SEED)
    rows += more_negative_rows(NEGATIVES, SEED, {r["reviewId"] for r in rows})
    picked = settings()
    reworded = rewordings([s[3] for s in picked])
    runtime = LlamaRuntime(str(resolve_model_path("gemma3-270m")), batch_rows=1)
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    scored = []
    for task, kind, w, question, labels in picked:
        out_type = out_type_of(kind, labels)
        wordings = {"user": question, "r1": reworded[question][0], "r2": reworded[question][1]}
        scores = {
            name: [
                runtime.score(
                    builder.build(q, out_type, [FIELD], [r["reviewText"]]), out_type
                ).logprobs
                for r in rows
            ]
            for name, q in wordings.items()
        }
        gold = [truth(kind, r) for r in rows]
        for result in quality(kind, gold, scores):
            scored.append({"task": task, "wording": w, **result})
        print(f"{task} {w}: {wordings}", flush=True)
    runtime.close()
    lines = [
        "# Averaging the user's wording with rewordings SmolLM2 writes\n",
        "`bench/wording_reworded_ensemble.py`: Gemma 3 270M, dev wordings, no examples, "
        f"{ROWS} seeded reviews plus {NEGATIVES} negative ones, table calibration per "
        "wording. Cells: mean / spread (best - worst wording within a task and "
        "population, averaged). Rewordings and LM calls per row below.\n",
        "| method | LM calls a row | per row | count |",
        "|---|---|---|---|",
    ]
    calls = {
        "user's wording": 1,
        "first rewording alone": 1,
        "user + first rewording": 2,
        "user + both rewordings": 3,
    }
    figures: dict = {"rewordings": reworded, "scored": scored, "methods": {}}
    for method, n_calls in calls.items():
        cells = []
        for measure in ("rows", "count"):
            mean, spread = mean_and_spread(
                [
                    {**s, "examples": "none", "q": s[measure]}
                    for s in scored
                    if s["method"] == method
                ]
            )
            figures["methods"].setdefault(method, {})[measure] = [mean, spread]
            cells.append(f"{mean:.3f} / {spread:.3f}")
        lines.append(f"| {method} | {n_calls} | " + " | ".join(cells) + " |")
    lines += ["", "| question | first rewording | second rewording |", "|---|---|---|"]
    lines += [f"| {q} | {a} | {b} |" for q, (a, b) in reworded.items()]
    write_results(args.out, "reworded-ensemble", figures, lines)


if __name__ == "__main__":
    main()
