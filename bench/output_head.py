"""Rows/s of a row alone with the output head against the full output layer, same answers.

A row's closed-set scores need the logits of its labels' first tokens only, and an int's
first answer step those of its few allowed tokens; the output head
(executors/runtimes/output_head.py) stops the row's last decode at the final norm and
computes just those with ggml's own dot product, where llama.cpp computes the whole
vocabulary's output layer (262k rows for Gemma 3). This runs the bool, options and int maps of
bench/lm_limits.py (its prompts, its 2 invented examples, reviews outside SemBench's query
movies, a seed other than lm_limits') one row at a time (``batch_rows=1``), the runtime's
own head against the full layer (``head = None``: the same scores from llama.cpp's
logits), in interleaved rounds so a slow moment of the machine favours neither. With
``--batch-rows 8`` the same for the batched recipe, whose full-layer side also runs the
output layer in decodes whose outputs no row reads (the batched context without its tap).

Reported per map and recipe: rows/s in every round, their median and its share of
llama.cpp's prefill limit (lm_limits.prefill_limit), and rows whose label scores are the
same bit for bit as the full layer's (every round) and whose argmax is the same (for
int: the same generated text).

    python bench/output_head.py --rows 120 --rounds 5   # idle machine
    python bench/output_head.py --rows 200 --rounds 3 --batch-rows 8 --maps int
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lm_limits as limits
import numpy as np
from results_file import write_results

from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.batch_scorer import streams_of
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path

RECIPES = ("full layer", "output head")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-rows", type=int, default=1)
    ap.add_argument("--maps", default="bool,options,int", help="comma-separated")
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=args.batch_rows)
    if rt.head is None:
        raise SystemExit(f"no output head on this model: {rt.head_reason}")
    head = rt.head
    streams = streams_of(rt)  # the batched context opened with the head, as the runtime does
    tap = streams.tap

    def use(recipe: str) -> None:
        on = recipe == "output head"
        rt.head = head if on else None
        streams.out_head, streams.tap = (head, tap) if on else (None, None)

    texts = [t for t, _ in limits.reviews(args.rows, seed=2)]
    res: dict = {"cpu": cpu_backend.cpu_model(), "threads": args.threads, "rows": args.rows}
    res["batch_rows"] = args.batch_rows
    res["simd"] = sorted(cpu_backend.simd_flags())
    res["extra_bufts"] = rt.backend.extra_bufts
    res["maps"] = {}
    for kind in args.maps.split(","):
        prompts = limits.prompts_of(rt, kind, texts)
        per: dict[str, dict] = {r: {"rows_per_s": []} for r in RECIPES}
        scores: dict[str, list] = {}
        same = args.rows
        for _ in range(args.rounds):
            for recipe in RECIPES:
                use(recipe)
                rt.empty_cache()
                out, st = limits.answer_all(rt, kind, prompts)
                per[recipe]["rows_per_s"].append(st["rows_per_s"])
                scores.setdefault(recipe, out)
                if recipe == "output head":  # the same in every round, and as the full layer
                    equal = zip(out, scores["full layer"], strict=True)
                    same = min(same, sum(a == b for a, b in equal))
        use("output head")
        limit = limits.prefill_limit(rt, prompts) / limits.row_tokens(rt, prompts)
        for p in per.values():
            p["median_rows_per_s"] = float(np.median(p["rows_per_s"]))
            p["share_of_limit"] = p["median_rows_per_s"] / limit
        argmax = [[s if kind == "int" else int(np.argmax(s)) for s in scores[r]] for r in RECIPES]
        res["maps"][kind] = {
            "limit_rows_per_s": limit,
            "recipes": per,
            "scores_bitwise_equal": same,
            "argmax_equal": sum(a == b for a, b in zip(*argmax, strict=True)),
        }
    rt.close()
    write(res, Path(args.out))


def recipe_name(res: dict) -> str:
    n = res.get("batch_rows", 1)
    return "a row alone" if n == 1 else f"{n} rows per decode"


def write(res: dict, out: Path) -> None:
    lines = [
        f"# Output head against the full output layer, {recipe_name(res)} ({res['cpu']}, "
        f"{' '.join(res['simd'])}, extra buffer types {'on' if res['extra_bufts'] else 'off'}, "
        f"{res['threads']} threads)\n",
        f"bench/output_head.py: {res['rows']} distinct reviews, bundled Gemma, rounds "
        "interleaved. Equal: rows whose label scores are the same bit for bit as the full "
        "layer's in every round; argmax: rows with the same top label.\n",
        "| map | recipe | rows/s (rounds) | median | share of limit |",
        "|---|---|---|---|---|",
    ]
    for kind, m in res["maps"].items():
        for recipe, p in m["recipes"].items():
            rounds = ", ".join(f"{x:.2f}" for x in p["rows_per_s"])
            lines.append(
                f"| {kind} | {recipe} | {rounds} | {p['median_rows_per_s']:.2f} "
                f"| {p['share_of_limit']:.0%} |"
            )
        lines.append(f"| {kind} | limit | | {m['limit_rows_per_s']:.2f} | |")
    lines.append("")
    for kind, m in res["maps"].items():
        lines.append(
            f"- {kind}: scores equal {m['scores_bitwise_equal']}/{res['rows']}, "
            f"argmax equal {m['argmax_equal']}/{res['rows']}"
        )
    write_results(out, "output-head", res, lines)


if __name__ == "__main__":
    main()
