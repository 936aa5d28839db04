"""llama.cpp's extra buffer types (AMX tiles, repacked weights) on and off, on this CPU.

For the same N distinct reviews as bench/lm_limits.py, a label-scored bool map with the
extra buffer types forced on and forced off, in interleaved rounds (the median run
reported: one run moves by about 10% from the next on a shared machine), each next to
llama.cpp's own prefill of the same row tokens in batches of 512 with the same kernels
(the limit; bench/lm_limits.py's prefill_limit). Also: how many answers (argmax of the
label log-probs) the two kernel paths share. A CPU whose extra kernels crash cannot run
the "on" half; it is reported as such, from a child process, instead of killing this one.

    python bench/cpu_kernels.py --rows 200 --threads 2   # on an idle machine
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from lm_limits import answer_all, prefill_limit, prompts_of, reviews

from semql.executors.runtimes.cpu_backend import cpu_model, simd_flags
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path

ROUNDS = 3


def _survives(extra: bool, threads: int) -> str | None:
    """None where a child decodes with this kernel path, else how it died."""
    code = (
        "from semql.executors.runtimes.llama_runtime import LlamaRuntime as R; "
        "from semql.executors.runtimes.model_files import default_model_path as d; "
        f"from semql.grammar.types import BoolType; r = R(d(), n_threads={threads}, "
        f"extra_bufts={extra}); r.score('Is this a test? Answer:', BoolType())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=600)
    return None if done.returncode == 0 else f"child exit {done.returncode}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    texts = [t for t, _ in reviews(args.rows)]
    flags = simd_flags()
    meta = {"cpu": cpu_model(), "flags": flags, "rows": len(texts), "threads": args.threads}
    paths = {}
    for extra in (True, False):
        died = _survives(extra, args.threads)
        if died is None:
            paths[extra] = LlamaRuntime(
                default_model_path(), n_threads=args.threads, extra_bufts=extra
            )
        else:
            meta[f"extra_bufts_{extra}"] = f"cannot run here: {died}"
    prompts = {e: prompts_of(rt, "bool", texts) for e, rt in paths.items()}
    limits = {e: prefill_limit(rt, prompts[e]) for e, rt in paths.items()}
    runs: dict[bool, list[dict]] = {e: [] for e in paths}
    answers: dict[bool, list] = {}
    for _ in range(ROUNDS):
        for extra, runtime in paths.items():
            runtime._chunk_starts = []
            out, r = answer_all(runtime, "bool", prompts[extra])
            answers.setdefault(extra, [int(np.argmax(lp)) for lp in out])
            runs[extra].append(r)
    rows = []
    for extra in paths:
        ordered = sorted(runs[extra], key=lambda r: r["rows_per_s"])
        r = ordered[len(ordered) // 2]
        limit_rows = limits[extra] / r["fresh_tokens_per_row"]
        rows.append(
            {
                "extra_bufts": extra,
                "rows_per_s": r["rows_per_s"],
                "rounds_rows_per_s": [x["rows_per_s"] for x in runs[extra]],
                "fresh_tokens_per_row": r["fresh_tokens_per_row"],
                "limit_tokens_per_s": limits[extra],
                "limit_rows_per_s": limit_rows,
                "share_of_limit": r["rows_per_s"] / limit_rows,
            }
        )
    if len(answers) == 2:
        meta["answers_equal"] = sum(a == b for a, b in zip(*answers.values(), strict=True))
    lines = [
        f"# Extra buffer types on and off ({meta['cpu']}; {' '.join(flags) or 'no avx2'})\n",
        f"{len(texts)} distinct reviews, bool map (label-scored), bundled Gemma 3 270M "
        f"Q4_K_M, {args.threads} thread(s), median of {ROUNDS} interleaved rounds. Limit: "
        "llama.cpp's prefill of the same row tokens, 512 per llama_decode, same kernels.\n",
        "| extra buffer types | rows/s | rounds | limit rows/s | share of limit |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        rounds = ", ".join(f"{x:.2f}" for x in r["rounds_rows_per_s"])
        lines.append(
            f"| {'on' if r['extra_bufts'] else 'off'} | {r['rows_per_s']:.2f} | {rounds} | "
            f"{r['limit_rows_per_s']:.2f} | {r['share_of_limit']:.0%} |"
        )
    for extra in (True, False):
        if f"extra_bufts_{extra}" in meta:
            lines.append(f"| {'on' if extra else 'off'} | {meta[f'extra_bufts_{extra}']} |")
    if "answers_equal" in meta:
        lines.append(f"\nAnswers equal between the two paths: {meta['answers_equal']}/{len(texts)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"kernels-{stamp}.json").write_text(json.dumps({**meta, "runs": rows}, indent=1))
    (out / f"kernels-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
