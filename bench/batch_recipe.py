"""Closed-set maps one row at a time against rows sharing fixed-shape decodes (#35).

The in-process runtime scores closed-set rows either one at a time (``batch_rows=1``,
each row's tokens in 16-token chunks in the runtime's own context, reusing the KV
prefix) or ``batch_rows`` to a decode (the default, executors/runtimes/batch_scorer.py:
each row in its own KV stream, every decode one fixed shape, so a row's numbers do not
depend on its batch mates). For each map (bool, options: label-scored as queries run
them, with the prompt layout of bench/lm_limits.py) this script reports, in one run on
``--rows`` distinct reviews outside SemBench's query movies:

- rows/s of both recipes in the runtime, and both as a share of llama.cpp's own prefill
  of the rows' tokens in batches of 512 (``prefill_limit``, as bench/lm_limits.py
  measures it);
- rows/s of the same map as a query (``LLMMap`` over a table of the reviews, result
  cache off: what a user gets, executor and DuckDB included), both recipes;
- the seconds of one row scored alone (a small query's latency), both recipes;
- bitwise independence of the batched recipe: every row's label log-probs in the run
  order, in ``--trials`` random orders split at a random row into two calls, and of
  ``--alone`` rows each run alone, compared bit for bit;
- the accuracy of the calibrated answers of both recipes against SemBench's labels
  (labels only score, nothing is chosen on them), and how many answers differ;
- the memory of the batched context.

    python bench/batch_recipe.py --rows 1000 --threads 2   # on an idle machine
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import polars as pl
from lm_limits import (
    MAPS,
    SHOTS,
    answer_all,
    calibrated_accuracy,
    prefill_limit,
    prompts_of,
    reviews,
)

import semql
from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.cpu_backend import BATCH_ROWS
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path


def query_rows_per_s(runtime: LlamaRuntime, kind: str, texts: list[str]) -> float:
    """Rows/s of the map as a query over a table of ``texts``, result cache off."""
    question, out_type, answers = MAPS[kind]
    shots = ", ".join(f"({t!r}, {answers[y]!r})" for t, y in SHOTS)
    options = f", options={tuple(out_type.labels())!r}" if kind == "options" else ""
    con = semql.connect(runtime=runtime, cache=False)
    try:
        con.register("texts", pl.DataFrame({"reviewText": texts}))
        sql = (
            f"SELECT {{{{LLMMap({question!r}, reviewText{options}, examples=({shots}))}}}} "
            "AS answer FROM texts"
        )
        con.query(sql.replace("FROM texts", "FROM (SELECT * FROM texts LIMIT 16)"))  # warm
        started = time.perf_counter()
        con.query(sql)
        return len(texts) / (time.perf_counter() - started)
    finally:
        con._runtime = None  # the caller's runtime: not closed here
        con.close()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    ap.add_argument("--trials", type=int, default=1)
    ap.add_argument("--alone", type=int, default=16)
    ap.add_argument("--maps", default="bool,options")
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    one = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=1)
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=args.batch_rows)
    data = reviews(args.rows)
    texts, gold = [t for t, _ in data], [g for _, g in data]
    res: dict = {
        "rows": len(texts),
        "threads": args.threads,
        "batch_rows": args.batch_rows,
        "cpu": cpu_backend.cpu_model(),
        "amx": "amx_tile" in cpu_backend.cpu_flags(),
        "maps": {},
    }
    rng = random.Random(0)
    for kind in args.maps.split(","):
        out_type = MAPS[kind][1]
        prompts = prompts_of(rt, kind, texts)
        limit_tokens = prefill_limit(one, prompts)
        today, t_stats = answer_all(one, kind, prompts)
        before = rss_mb()
        rt.score_many(prompts[: args.batch_rows], out_type)  # warm: context, head, graph
        res.setdefault("context_mb", rss_mb() - before)
        started = time.perf_counter()
        base = [s.logprobs for s in rt.score_many(prompts, out_type)]
        seconds = time.perf_counter() - started
        equal, compared = 0, 0
        for _ in range(args.trials):
            order = list(range(len(prompts)))
            rng.shuffle(order)
            cut = rng.randint(1, len(order) - 1)
            got = {}
            for part in (order[:cut], order[cut:]):
                scored = rt.score_many([prompts[i] for i in part], out_type)
                got.update((i, s.logprobs) for i, s in zip(part, scored, strict=True))
            equal += sum(got[i] == base[i] for i in order)
            compared += len(order)
        alone = rng.sample(range(len(prompts)), min(args.alone, len(prompts)))
        started = time.perf_counter()
        alone_equal = sum(rt.score(prompts[i], out_type).logprobs == base[i] for i in alone)
        alone_s = (time.perf_counter() - started) / len(alone)
        started = time.perf_counter()
        for i in alone:
            one.score(prompts[i], out_type)
        alone_one_s = (time.perf_counter() - started) / len(alone)
        fresh = t_stats["fresh_tokens_per_row"]
        limit_rows = limit_tokens / fresh
        batched = lambda ps, t=out_type: [s.logprobs for s in rt.score_many(ps, t)]  # noqa: E731
        decide = lambda lps: [int(np.argmax(lp)) for lp in lps]  # noqa: E731
        res["maps"][kind] = {
            "limit_rows_per_s": limit_rows,
            "fresh_tokens_per_row": fresh,
            "today_rows_per_s": t_stats["rows_per_s"],
            "recipe_rows_per_s": len(prompts) / seconds,
            "today_share": t_stats["rows_per_s"] / limit_rows,
            "recipe_share": len(prompts) / seconds / limit_rows,
            "query_one_rows_per_s": query_rows_per_s(one, kind, texts),
            "query_batched_rows_per_s": query_rows_per_s(rt, kind, texts),
            "alone_one_s": alone_one_s,
            "alone_batched_s": alone_s,
            "orders_bitwise_equal": f"{equal}/{compared}",
            "alone_bitwise_equal": f"{alone_equal}/{len(alone)}",
            "raw_answers_differing": sum(
                a != b for a, b in zip(decide(today), decide(base), strict=True)
            ),
            "max_logprob_diff": float(np.max(np.abs(np.asarray(today) - np.asarray(base)))),
            "today_accuracy": calibrated_accuracy(one, kind, today, gold),
            "recipe_accuracy": calibrated_accuracy(rt, kind, base, gold, batched),
        }
        print(kind, json.dumps(res["maps"][kind], indent=1), flush=True)
    rt.close()
    one.close()
    write(res, Path(args.out))


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"batch-recipe-{stamp}.json").write_text(json.dumps(res, indent=1))
    lines = [
        f"# Closed-set maps: one row at a time vs {res['batch_rows']} rows per decode",
        "",
        f"From `bench/batch_recipe.py`, one run: {res['rows']} distinct reviews outside "
        f"SemBench's query movies, bundled Gemma 3 270M Q4_K_M, {res['threads']} threads, "
        f"{res['cpu']}{' (AMX)' if res['amx'] else ''}. "
        f"Batched context: {res['context_mb']:.0f} MB. Runtime rows/s are score calls; "
        "query rows/s an LLMMap over a table of the reviews (result cache off).",
        "",
        "| map | limit rows/s | runtime one / batched rows/s (share of limit) "
        "| query one / batched rows/s | one row alone, s | orders bitwise | alone bitwise "
        "| answers differing | accuracy one / batched |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, m in res["maps"].items():
        lines.append(
            f"| {kind} | {m['limit_rows_per_s']:.1f} | {m['today_rows_per_s']:.1f} "
            f"({m['today_share']:.0%}) / {m['recipe_rows_per_s']:.1f} "
            f"({m['recipe_share']:.0%}) | {m['query_one_rows_per_s']:.1f} / "
            f"{m['query_batched_rows_per_s']:.1f} | {m['alone_one_s']:.2f} / "
            f"{m['alone_batched_s']:.2f} | {m['orders_bitwise_equal']} | "
            f"{m['alone_bitwise_equal']} | {m['raw_answers_differing']} "
            f"(max log-prob diff {m['max_logprob_diff']:.2f}) | "
            f"{m['today_accuracy']:.3f} / {m['recipe_accuracy']:.3f} |"
        )
    (out / f"batch-recipe-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
