"""Rows/s of a row alone (``batch_rows=1``) by prefill chunk size, and what it does to answers.

``llama_runtime.PREFILL_CHUNK`` fixes how many of a row's tokens go in one decode (chunks
start at each prompt segment and every PREFILL_CHUNK tokens within one, the answer cue
riding in the last field's chunk, so a prompt is computed the same way whatever the cache
holds). This runs the bool and options maps of
bench/lm_limits.py (its prompts, its 2 invented examples, reviews outside SemBench's query
movies, a seed other than lm_limits') under each recipe in ``--chunks``, setting the
module's constant for each pass; rounds interleaved so a slow moment of the machine does
not favour one recipe. ``16+cue`` is the recipe before DECODING 3: 16-token chunks and the
answer cue in a chunk of its own (emulated by giving the runtime one more, empty, segment
at the prompt's end, which the runtime then drops instead of the cue's).

Reported per recipe: rows/s in every round and their median, the median's share of
llama.cpp's prefill limit (lm_limits.prefill_limit), answers equal to the first recipe's
(argmax of the label scores), and the calibrated accuracy against the shipped labels
(reported, not used to choose).

    python bench/prefill_chunk.py --rows 80 --rounds 6 --chunks 16+cue,16,64   # idle machine
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lm_limits as limits
import numpy as np
from results_file import write_results

from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes import llama_runtime as runtime_module
from semql.executors.runtimes.model_files import default_model_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=80)
    ap.add_argument("--chunks", default="16+cue,16,64")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    chunks = args.chunks.split(",")
    shipped = runtime_module.PREFILL_CHUNK
    rt = runtime_module.LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=1)
    own_segments = rt.tokenize_segments

    def cue_apart(prompt: str) -> tuple[list[int], list[int]]:
        tokens, starts = own_segments(prompt)
        return tokens, [*starts, len(tokens)]

    data = limits.reviews(args.rows, seed=1)
    texts, gold = [t for t, _ in data], [g for _, g in data]
    res: dict = {"cpu": cpu_backend.cpu_model(), "threads": args.threads, "rows": args.rows}
    res["amx"] = "amx_tile" in cpu_backend.cpu_flags()
    res["maps"] = {}
    for kind in ("bool", "options"):
        prompts = limits.prompts_of(rt, kind, texts)
        per: dict[str, dict] = {c: {"rows_per_s": []} for c in chunks}
        for _ in range(args.rounds):
            for c in chunks:
                size = int(c.removesuffix("+cue"))
                runtime_module.PREFILL_CHUNK = size
                rt.tokenize_segments = cue_apart if c.endswith("+cue") else own_segments
                rt.empty_cache()
                out, st = limits.answer_all(rt, kind, prompts)
                per[c]["rows_per_s"].append(st["rows_per_s"])
                per[c]["argmax"] = [int(np.argmax(lp)) for lp in out]
                per[c]["accuracy"] = limits.calibrated_accuracy(rt, kind, out, gold)
        runtime_module.PREFILL_CHUNK = shipped
        rt.tokenize_segments = own_segments
        limit = limits.prefill_limit(rt, prompts) / limits.row_tokens(rt, prompts)
        first = per[chunks[0]]["argmax"]
        for c in chunks:
            p = per[c]
            p["median_rows_per_s"] = float(np.median(p["rows_per_s"]))
            p["share_of_limit"] = p["median_rows_per_s"] / limit
            p["answers_equal"] = sum(a == b for a, b in zip(p.pop("argmax"), first, strict=True))
        res["maps"][kind] = {"limit_rows_per_s": limit, "chunks": per}
    rt.close()
    write(res, Path(args.out), chunks, shipped)


def write(res: dict, out: Path, chunks: list[str], shipped: int) -> None:
    lines = [
        f"# Prefill chunk size, a row alone ({res['cpu']}{' (AMX)' if res['amx'] else ''}, "
        f"{res['threads']} threads)\n",
        f"bench/prefill_chunk.py: {res['rows']} distinct reviews, bundled Gemma, rounds "
        f"interleaved; shipped PREFILL_CHUNK = {shipped}. Answers equal: argmax of the label "
        f"scores against chunk {chunks[0]}.\n",
        "| map | recipe | rows/s (rounds) | median | share of limit | answers equal | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, m in res["maps"].items():
        for c, p in m["chunks"].items():
            rounds = ", ".join(f"{x:.2f}" for x in p["rows_per_s"])
            lines.append(
                f"| {kind} | {c} | {rounds} | {p['median_rows_per_s']:.2f} "
                f"| {p['share_of_limit']:.0%} "
                f"| {p['answers_equal']}/{res['rows']} | {p['accuracy']:.3f} |"
            )
        lines.append(f"| {kind} | limit | | {m['limit_rows_per_s']:.2f} | | | |")
    write_results(out, "prefill-chunk", res, lines)


if __name__ == "__main__":
    main()
