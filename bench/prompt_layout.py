"""Does repeating the question right before the answer cue help a small model decide?

A completion prompt states the question once, at the top, and a row's text sits between
it and ``Answer:``; a small model may read the question less well the further it is from
where it answers. This bench scores the wording bench's *dev* settings (bench/wording.py:
4 question wordings x 3 example sets of the positive yes/no and sentiment options tasks;
its test wordings are not run, since a layout would be chosen here) in two layouts:

- ``shipped``: the prompt queries build (planner/physical/prompt_format.py);
- ``echo``: the same, with the question repeated on its own line before every
  ``Answer:`` (the examples' and the row's), which costs every row those tokens.

on the same 180 reviews as the stored wording run (120 seeded, 60 more negative ones),
and replays content_free and batch calibration on three populations through
bench/wording_report.py's code: per-row macro-F1 and count quality, as the mean over the
dev settings and the spread between wordings, with each setting's ROC AUC and seconds.

    python bench/prompt_layout.py --model gemma3-270m --out bench/results/wording
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import wording as W
import wording_report as R
from sklearn.metrics import roc_auc_score

from semql.executors.lm.closed_set import CONTENT_FREE
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import resolve_model_path
from semql.planner.physical.prompt_format import (
    Prompt,
    PromptBuilder,
    _field_segments,
    field_block,
    instruction,
)

TASKS = ("positive yes/no", "sentiment options")
LAYOUTS = ("shipped", "echo")
METHODS = ("content_free", "batch")
POPULATIONS = ("as sampled", "balanced", "mostly negative")


def build(layout: str, question: str, out_type, text: str, shots: list) -> Prompt:
    if layout == "shipped":
        return PromptBuilder("completion").build(question, out_type, [W.FIELD], [text], shots)
    cue = f"\n{question.strip()}\nAnswer:"
    parts = [instruction(question, out_type)]
    parts += [f"{field_block([W.FIELD], [t])}{cue} {out_type.render(a)}" for t, a in shots]
    row = field_block([W.FIELD], [text])
    return Prompt(["\n\n".join(parts) + "\n\n", *_field_segments(row), cue])


def settings_of(runtime, layout: str, rows: list[dict], sampled: int, progress) -> list[dict]:
    out = []
    for task in TASKS:
        kind, wordings = W.TASKS[task]
        for w, (question, labels) in enumerate(wordings[: -W.TEST_WORDINGS]):
            out_type = W.out_type_of(kind, labels)
            for set_name, examples in W.EXAMPLE_SETS.items():
                shots = [(t, W.example_answer(kind, labels, p)) for t, p in examples]

                def logprobs(text: str, question=question, out_type=out_type, shots=shots):
                    prompt = build(layout, question, out_type, text, shots)
                    return runtime.score(prompt, out_type).logprobs

                started = time.perf_counter()
                scores = [logprobs(r["reviewText"]) for r in rows]
                entry = {
                    "model": runtime.name,
                    "task": task,
                    "kind": kind,
                    "wording": w,
                    "part": "dev",
                    "examples": set_name,
                    "logprobs": np.round(scores, 5).tolist(),
                    "content_free": [logprobs(v) for v in CONTENT_FREE],
                    "truth": [W.truth(kind, r) for r in rows],
                    "reviewId": [r["reviewId"] for r in rows],
                    "seconds": round(time.perf_counter() - started, 2),
                }
                out.append(entry)
                progress(layout, entry)
    return out


def summary(by_layout: dict[str, list[dict]], sampled: int, model: str) -> str:
    lines = [
        "# The question repeated before the answer cue\n",
        f"`bench/prompt_layout.py`, {model}, the wording bench's dev settings of "
        f"{' and '.join(TASKS)} ({sampled} seeded reviews plus the stored run's extra "
        "negative ones). Cells: dev mean / spread (best - worst wording within a task, "
        "example set and population).\n",
        "| population | measure | method | " + " | ".join(LAYOUTS) + " |",
        "|---|---|---|" + "---|" * len(LAYOUTS),
    ]
    scored = {lay: R.score_all(s, sampled) for lay, s in by_layout.items()}
    for pop in POPULATIONS:
        for measure in ("rows", "count"):
            for method in METHODS:
                cells = []
                for lay in LAYOUTS:
                    rows = [
                        s
                        for s in scored[lay]
                        if s["population"] == pop
                        and s["measure"] == measure
                        and s["method"] == method
                    ]
                    mean, _, spread = R.cell(rows, "dev")
                    cells.append(f"{mean:.3f} / {spread:.3f}")
                lines.append(f"| {pop} | {measure} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "ROC AUC of the positive label's log-odds, per wording:", ""]
    lines += ["| task | examples | " + " | ".join(LAYOUTS) + " |", "|---|---|---|---|"]
    keys = sorted({(e["task"], e["examples"]) for e in by_layout[LAYOUTS[0]]})
    for task, ex in keys:
        cells = []
        for lay in LAYOUTS:
            aucs = []
            for e in by_layout[lay]:
                if (e["task"], e["examples"]) == (task, ex):
                    lp = np.asarray(e["logprobs"])
                    aucs.append(roc_auc_score(np.asarray(e["truth"], bool), lp[:, 0] - lp[:, 1]))
            cells.append(" ".join(f"{a:.2f}" for a in aucs))
        lines.append(f"| {task} | {ex} | " + " | ".join(cells) + " |")
    secs = {lay: sum(e["seconds"] for e in s) for lay, s in by_layout.items()}
    lines += [
        "",
        "Seconds for all settings' rows: "
        + ", ".join(f"{lay} {secs[lay]:.0f} s" for lay in LAYOUTS)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--rows", type=int, default=120)
    ap.add_argument("--negatives", type=int, default=60)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--out", default="bench/results/wording")
    args = ap.parse_args()
    rows = W.load_rows(args.rows, args.seed)
    taken = {r["reviewId"] for r in rows}
    rows += W.more_negative_rows(args.negatives, args.seed, taken)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"layout-{time.strftime('%Y%m%d-%H%M%S')}"
    runtime = LlamaRuntime(resolve_model_path(args.model), batch_rows=1)

    def progress(layout: str, e: dict) -> None:
        print(
            f"{layout} | {e['task']} | {e['wording']} | {e['examples']}: {e['seconds']:.0f} s",
            flush=True,
        )

    by_layout = {}
    for layout in LAYOUTS:
        by_layout[layout] = settings_of(runtime, layout, rows, args.rows, progress)
        doc = {"rows": args.rows, "seed": args.seed, "settings": by_layout[layout]}
        Path(f"{stem}-{layout}-rows.json").write_text(json.dumps(doc))
    runtime.close()
    text = summary(by_layout, args.rows, runtime.name)
    Path(f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
