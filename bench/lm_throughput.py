"""LM throughput on real reviews: rows/s of bool, options and int classification.

Runs each output type over the same N SemBench reviews with the bundled model, in four
configurations: with/without KV prefix reuse x with/without the closed-set fast path
(stop as soon as the decoded prefix determines the label). Same model, same data, one run;
the ratios are what matter. Writes a JSON and a markdown table.

    python bench/lm_throughput.py --rows 500 --out bench/results
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import resolve_model_path
from semql.grammar.types import BoolType, IntType, OptionsType
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

EXAMPLES = {
    "bool": [("A joyless, plodding mess.", False), ("Funny, warm and beautifully made.", True)],
    "options": [
        ("A joyless, plodding mess.", "NEGATIVE"),
        ("Funny, warm and beautifully made.", "POSITIVE"),
    ],
    "int": [("A joyless, plodding mess.", 1), ("Funny, warm and beautifully made.", 5)],
}
TYPES = {
    "bool": ("Is this movie review positive?", BoolType()),
    "options": ("What is the sentiment of this review?", OptionsType(("POSITIVE", "NEGATIVE"))),
    "int": ("How many stars from 1 to 5 would the critic give?", IntType()),
}


def reviews(n: int) -> list[str]:
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        return [r["reviewText"] for r in csv.DictReader(f)][:n]


def run(model: str, texts: list[str], kind: str, reuse: bool, fast: bool) -> dict:
    runtime = LlamaRuntime(model, prefix_reuse=reuse, closed_set_fast_path=fast)
    question, out_type = TYPES[kind]
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    prompts = [
        builder.build(question, out_type, ["reviewText"], [t], EXAMPLES[kind]) for t in texts
    ]
    runtime.generate(prompts[0], out_type)  # compile the grammar outside the timing
    totals = {"prompt_tokens": 0, "cached_tokens": 0, "generated_tokens": 0}
    answers = []
    started = time.perf_counter()
    for p in prompts:
        g = runtime.generate(p, out_type)
        answers.append(out_type.parse(g.text))
        totals["prompt_tokens"] += g.prompt_tokens
        totals["cached_tokens"] += g.cached_tokens
        totals["generated_tokens"] += g.generated_tokens
    seconds = time.perf_counter() - started
    runtime.close()
    return {
        "type": kind,
        "prefix_reuse": reuse,
        "fast_path": fast,
        "rows": len(texts),
        "seconds": round(seconds, 2),
        "rows_per_s": round(len(texts) / seconds, 2),
        **totals,
        "answers": answers,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    model = resolve_model_path(args.model)
    texts = reviews(args.rows)
    results = []
    for kind in TYPES:
        configs = [(True, True), (False, True)]
        if TYPES[kind][1].labels() is not None:
            configs += [(True, False), (False, False)]
        for reuse, fast in configs:
            r = run(model, texts, kind, reuse, fast)
            results.append(r)
            print(
                f"{kind:8s} reuse={reuse!s:5s} fast={fast!s:5s} {r['rows_per_s']:6.2f} rows/s "
                f"({r['seconds']}s, cached {r['cached_tokens']}/{r['prompt_tokens']} tok)",
                flush=True,
            )
    for kind in TYPES:
        rows = [r for r in results if r["type"] == kind]
        same = all(r["answers"] == rows[0]["answers"] for r in rows)
        print(f"{kind}: identical answers across configurations: {same}")
        for r in rows:
            r["answers_identical_to_first"] = r["answers"] == rows[0]["answers"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": model,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "rows": len(texts),
    }
    (out / "lm_throughput.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "results": [{k: v for k, v in r.items() if k != "answers"} for r in results],
            },
            indent=1,
        )
    )
    lines = [
        "| type | prefix reuse | fast path | rows/s | seconds | KV-cached prompt tokens |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['type']} | {r['prefix_reuse']} | {r['fast_path']} | "
            f"{r['rows_per_s']} | {r['seconds']} | "
            f"{r['cached_tokens']}/{r['prompt_tokens']} |"
        )
    (out / "lm_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
