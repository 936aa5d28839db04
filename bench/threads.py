"""Rows/s of a 120-row classification with 1 and 2 llama.cpp threads, idle and loaded.

llama.cpp's worker threads busy-wait for each other between steps; when another
CPU-bound process takes one of the cores they spin while it runs, and throughput can
collapse. This measures the bundled model on the 120 reviews of 'taken_3' (bool, 2
examples, the prompt layout SemQL uses, prefix reuse on, no result cache) in six
configurations in one run: {1, 2, default} threads x {idle, one competing busy-loop
process}; the default adapts to the load (executors/runtimes/thread_policy.py).
A configuration stops at --deadline seconds and reports the rows it finished.

    python bench/threads.py --out bench/results/threads
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import resolve_model_path
from semql.grammar.types import BoolType
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

EXAMPLES = [("A joyless, plodding mess.", False), ("Funny, warm and beautifully made.", True)]
QUESTION = "Is this movie review positive?"


def reviews(movie: str) -> list[str]:
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        return [r["reviewText"] for r in csv.DictReader(f) if r["id"] == movie]


def run(
    model: str,
    texts: list[str],
    threads: int | None,
    deadline: float,
    extra_bufts: bool | None = None,
) -> dict:
    runtime = LlamaRuntime(model, n_threads=threads, extra_bufts=extra_bufts, batch_rows=1)
    out_type = BoolType()
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    prompts = [builder.build(QUESTION, out_type, ["reviewText"], [t], EXAMPLES) for t in texts]
    runtime.generate(prompts[0], out_type)  # grammar compiled outside the timing
    done, answers = 0, []
    started = time.perf_counter()
    for p in prompts:
        answers.append(out_type.parse(runtime.generate(p, out_type).text))
        done += 1
        if time.perf_counter() - started > deadline:
            break
    seconds = time.perf_counter() - started
    runtime.close()
    return {
        "threads": threads or f"default (max {runtime.n_threads})",
        "extra_bufts": runtime.backend.extra_bufts,
        "rows": done,
        "seconds": round(seconds, 2),
        "rows_per_s": round(done / seconds, 3),
        "finished": done == len(prompts),
        "answers": answers,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--movie", default="taken_3")
    ap.add_argument("--deadline", type=float, default=120.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default="bench/results/threads")
    ap.add_argument(
        "--extra-bufts",
        action="store_true",
        help="instead: idle, 1 and 2 threads, extra buffer types on vs off",
    )
    args = ap.parse_args()
    model = resolve_model_path(args.model)
    texts = reviews(args.movie)
    results = []
    if args.extra_bufts:
        for threads in (1, 2):
            for extra in (True, False):
                row = run(model, texts, threads, args.deadline, extra_bufts=extra)
                row["load"] = "idle"
                results.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "answers"}), flush=True)
    for load in ("idle", "loaded") if not args.extra_bufts else ():
        for threads in (1, 2, None):  # None: SemQL's default (executors/runtimes/thread_policy.py)
            competitor = None
            if load == "loaded":
                competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(1.0)
            try:
                row = run(model, texts, threads, args.deadline)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
            row["load"] = load
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "answers"}), flush=True)
    base = results[0]["answers"]
    for r in results:
        n = len(r["answers"])
        r["answers_equal_to_first"] = r["answers"] == base[:n]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    meta = {
        "model": os.path.basename(model),
        "rows": len(texts),
        "movie": args.movie,
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "deadline_s": args.deadline,
        "competitor": "one python busy loop (while True: pass)",
    }
    stamp += "-extra-bufts" if args.extra_bufts else ""
    (out / f"threads-{stamp}.json").write_text(json.dumps({**meta, "runs": results}, indent=1))
    lines = [
        f"# llama.cpp threads under load ({meta['model']}, {len(texts)} rows, "
        f"{meta['cores']} cores)\n",
        "| load | threads | extra buffer types | rows done | seconds | rows/s | answers equal |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['load']} | {r['threads']} | {r['extra_bufts']} | {r['rows']} | {r['seconds']} | "
            f"{r['rows_per_s']} | {r['answers_equal_to_first']} |"
        )
    (out / f"threads-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
