"""Rows/s of generated answers with and without the forced-text draft (a row alone).

executors/runtimes/forced_draft.py decodes the text a grammar forces (an int's leading
space, a JSON object's braces and keys) in the decode before it, kept as far as the model's
greedy choice agrees. This runs bench/lm_limits.py's int map (its prompts and examples,
reviews outside SemBench's query movies, a seed other than lm_limits') and a JSON map with
two keys, each with the draft and without it (``GreedyDecoder.draft`` answering nothing,
the recipe before DECODING 6), rounds interleaved so a slow moment of the machine does not
favour one recipe. Reported: rows/s in every round and their median, the int map's share
of llama.cpp's prefill limit (lm_limits.prefill_limit, measured in every round), the
decodes a row took, and how many answers the two recipes share (the draft changes which
tokens share a decode, so numerics, not rules, may move an answer).

    python bench/forced_draft.py --rows 120 --rounds 5   # idle machine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lm_limits as limits
import numpy as np
from results_file import write_results

from semql.executors.runtimes import cpu_backend, greedy
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar.types import IntType, JsonType
from semql.planner.physical.prompt_format import PromptBuilder

SCHEMA = {
    "type": "object",
    "properties": {
        "stars": {"type": "integer"},
        "verdict": {"type": "string", "maxLength": 24},
    },
    "required": ["stars", "verdict"],
}
MAPS = {
    "int": ("How many stars from 1 to 5 would the critic give?", IntType()),
    "json": (
        "Rate the review: its stars from 1 to 5 and a short verdict.",
        JsonType(json.dumps(SCHEMA)),
    ),
}


def prompts_of(rt: LlamaRuntime, kind: str, texts: list[str]) -> list:
    if kind == "int":
        return limits.prompts_of(rt, "int", texts)
    question, out_type = MAPS[kind]
    build = PromptBuilder(rt.style, rt.format_chat).build
    return [build(question, out_type, ["reviewText"], [t]) for t in texts]


def timed(rt: LlamaRuntime, prompts: list, out_type, draft: bool) -> tuple[float, list, float]:
    """rows/s, answers, and llama_decode calls a row under one recipe."""
    own = greedy.GreedyDecoder.draft
    if not draft:
        greedy.GreedyDecoder.draft = lambda self: []
    decode, calls = rt._decode, [0]

    def counted(*args, **kwargs):
        calls[0] += 1
        return decode(*args, **kwargs)

    rt._decode = counted
    try:
        rt.generate_many(prompts[:4], out_type)  # grammar compiled, head cached
        calls[0] = 0
        started = time.perf_counter()
        answers = [g.text for g in rt.generate_many(prompts, out_type)]
        seconds = time.perf_counter() - started
    finally:
        greedy.GreedyDecoder.draft = own
        del rt._decode
    return len(prompts) / seconds, answers, calls[0] / len(prompts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=1)
    texts = [t for t, _ in limits.reviews(args.rows, seed=2)]
    prompts = {kind: prompts_of(rt, kind, texts) for kind in MAPS}
    res: dict = {"cpu": cpu_backend.cpu_model(), "threads": args.threads, "rows": args.rows}
    res["rounds"], res["maps"], limit_rows = args.rounds, {}, []
    runs = {(k, d): [] for k in MAPS for d in (False, True)}
    answers, decodes = {}, {}
    for r in range(args.rounds):
        limit_rows.append(
            limits.prefill_limit(rt, prompts["int"]) / limits.row_tokens(rt, prompts["int"])
        )
        for kind, (_, out_type) in MAPS.items():
            for draft in (False, True) if r % 2 else (True, False):
                rate, got, per_row = timed(rt, prompts[kind], out_type, draft)
                runs[(kind, draft)].append(rate)
                if answers.setdefault((kind, draft), got) != got:
                    raise SystemExit(f"{kind}: answers moved between rounds")
                decodes[(kind, draft)] = per_row
        print("round", r + 1, {f"{k} {d}": round(v[-1], 2) for (k, d), v in runs.items()})
    lines = [
        "# The forced-text draft: generated answers with and without it",
        "",
        f"{res['cpu']}, {args.threads} threads, {args.rows} distinct reviews, a row alone, "
        f"median of {args.rounds} interleaved rounds (bench/forced_draft.py).",
        "",
        "| map | recipe | rows/s (median) | rounds | share of the prefill limit | "
        "decodes a row | answers equal |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in MAPS:
        same = sum(
            a == b for a, b in zip(answers[(kind, False)], answers[(kind, True)], strict=True)
        )
        entry = {}
        for draft in (False, True):
            rates = runs[(kind, draft)]
            shares = [x / lim for x, lim in zip(rates, limit_rows, strict=True)]
            entry["draft" if draft else "no draft"] = {
                "rows_per_s": float(np.median(rates)),
                "rounds": rates,
                "share_of_limit": float(np.median(shares)) if kind == "int" else None,
                "decodes_per_row": decodes[(kind, draft)],
            }
            share = f"{np.median(shares):.0%}" if kind == "int" else "-"
            lines.append(
                f"| {kind} | {'draft' if draft else 'no draft'} | {np.median(rates):.2f} | "
                + ", ".join(f"{x:.2f}" for x in rates)
                + f" | {share} | {decodes[(kind, draft)]:.2f} | {same} of {len(texts)} |"
            )
        entry["answers_equal"] = same
        res["maps"][kind] = entry
    res["limit_rows_per_s"] = limit_rows
    write_results(Path(args.out), "forced-draft", res, lines)


if __name__ == "__main__":
    main()
