"""Whether a row's answer is its own, bit for bit, with the recipe this CPU gets (#35).

For ``--rows`` distinct reviews outside SemBench's query movies and each closed-set map of
bench/lm_limits.py (bool, options), and options whose labels take three tokens and share
their first (one row at a time decoded together as sequences of their own that share the
row's cells, executors/runtimes/label_scores.py), the label log-probabilities the runtime's default
recipe (cpu_backend.default_batch_rows, or ``--batch-rows``) gives each row:

- in the run order, handed over as the LM executor hands them (lm_limits.answer_all);
- in ``--orders`` random orders, each split at a random row into two calls (one row at a
  time the previous prompt in the KV cache changes; batched the batch mates change);
- ``--alone`` rows, each scored alone from an empty cache;

compared bit for bit with the run order. The suite checks the same on a dozen rows
(tests/test_batched_scores.py); this is the check at the size the issue asks for.

    python bench/row_independence.py --rows 1000 --threads 2
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from lm_limits import MAPS, answer_all, prompts_of, reviews
from results_file import write_results

from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar.types import OptionsType

CLOSED_SETS = {
    **{kind: MAPS[kind] for kind in ("bool", "options")},
    "three-token labels": (
        "What kind of review is this?",
        OptionsType(("a negative review", "a positive review")),
        ("a negative review", "a positive review"),
    ),
}


def check(rt: LlamaRuntime, kind: str, prompts: list, orders: int, alone: int) -> dict:
    """Rows whose log-probs equal the run order's bit for bit, per way of asking."""
    out_type = CLOSED_SETS[kind][1]
    base, timing = answer_all(rt, kind, prompts, CLOSED_SETS)
    rng = random.Random(11)
    result = {"rows": len(prompts), "rows_per_s": timing["rows_per_s"], "orders": []}
    for _ in range(orders):
        order = list(range(len(prompts)))
        rng.shuffle(order)
        cut = rng.randrange(1, len(order))
        got = {}
        for part in (order[:cut], order[cut:]):
            scored = rt.score_many([prompts[i] for i in part], out_type)
            got.update((i, s.logprobs) for i, s in zip(part, scored, strict=True))
        result["orders"].append(sum(got[i] == base[i] for i in range(len(prompts))))
    picked = rng.sample(range(len(prompts)), min(alone, len(prompts)))
    same = 0
    for i in picked:
        rt.empty_cache()
        same += rt.score_many([prompts[i]], out_type)[0].logprobs == base[i]
    result["alone"] = [same, len(picked)]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-rows", type=int, default=None)
    ap.add_argument("--orders", type=int, default=2)
    ap.add_argument("--alone", type=int, default=16)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=args.batch_rows)
    texts = [t for t, _ in reviews(args.rows)]
    started = time.perf_counter()
    maps = {
        kind: check(rt, kind, prompts_of(rt, kind, texts, CLOSED_SETS), args.orders, args.alone)
        for kind in CLOSED_SETS
    }
    flags = cpu_backend.simd_flags()
    figures = {
        "cpu": cpu_backend.cpu_model(),
        "simd": flags,
        "extra_bufts": rt.backend.extra_bufts,
        "recipe": rt.batch_rows_reason,
        "decoding": rt.decoding,
        "threads": args.threads,
        "seconds": time.perf_counter() - started,
        "maps": maps,
    }
    lines = [
        "# A row's label log-probs, bit for bit, however the rows are asked\n",
        f"`bench/row_independence.py`: {len(texts)} distinct reviews outside SemBench's query "
        f"movies, bundled Gemma 3 270M Q4_K_M, {cpu_backend.cpu_model()} "
        f"({', '.join(flags) or 'no AVX2'}), extra buffer types "
        f"{'on' if rt.backend.extra_bufts else 'off'}, {args.threads} threads, recipe: "
        f"{rt.batch_rows_reason} (decoding {rt.decoding}). Each cell: rows equal to the run "
        "order's bit for bit.\n",
        "| map | rows/s (run order) | random orders, split in two calls | alone, empty cache |",
        "|---|---|---|---|",
    ]
    for kind, r in maps.items():
        orders = ", ".join(f"{n}/{r['rows']}" for n in r["orders"])
        lines.append(
            f"| {kind} | {r['rows_per_s']:.2f} | {orders} | {r['alone'][0]}/{r['alone'][1]} |"
        )
    write_results(Path(args.out), "row-independence", figures, lines)


if __name__ == "__main__":
    main()
