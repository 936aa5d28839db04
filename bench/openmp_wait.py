"""How long llama.cpp's OpenMP threads spin at a barrier, idle and beside a busy process.

This build of llama-cpp-python runs llama.cpp's threads on OpenMP (libgomp), so each
step ends at an OpenMP barrier where a waiting thread spins GOMP_SPINCOUNT times before
it sleeps (ggml's own threadpool ``poll`` level applies only to builds without OpenMP).
libgomp reads the setting once, when it loads, so every configuration runs in a fresh
child process with its environment set: libgomp's default spin (300000), SemQL's
(thread_policy.SPIN_COUNT) and none (0, a waiting thread sleeps at once), each with 2
threads fixed and with SemQL's adaptive default, on an idle machine and beside one
busy-loop process. Bundled model, the first --rows reviews of 'taken_3', bool with two
examples, prefix reuse on, no result cache; answers compared with the first run.

    python bench/openmp_wait.py --out bench/results/threads
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from semql.executors.runtimes.cpu_backend import cpu_model
from semql.executors.runtimes.thread_policy import SPIN_COUNT

SPINS = {"libgomp default": "300000", "SemQL": SPIN_COUNT, "none": "0"}
# --spins adds spin counts to weigh against these (each named by its count)


def child(threads: int | None, load: str, rows: int, deadline: float) -> None:
    """One configuration in this process (GOMP_SPINCOUNT already set by the parent)."""
    from threads import reviews, run

    from semql.executors.runtimes.model_files import resolve_model_path

    texts = reviews("taken_3")[:rows]
    competitor = None
    if load == "loaded":
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)
    try:
        row = run(resolve_model_path(None), texts, threads, deadline)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    print(json.dumps(row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--deadline", type=float, default=120.0)
    ap.add_argument("--out", default="bench/results/threads")
    ap.add_argument("--spins", default="", help="more GOMP_SPINCOUNT values, comma-separated")
    ap.add_argument("--child", nargs=2, metavar=("THREADS", "LOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        threads = None if args.child[0] == "default" else int(args.child[0])
        child(threads, args.child[1], args.rows, args.deadline)
        return
    spins = dict(SPINS)
    spins |= {v: v for v in filter(None, (x.strip() for x in args.spins.split(",")))}
    results = []
    for load in ("idle", "loaded"):
        for threads in ("2", "default"):
            for name, spin in spins.items():
                env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                env["GOMP_SPINCOUNT"] = spin
                done = subprocess.run(
                    [sys.executable, __file__, "--rows", str(args.rows)]
                    + ["--deadline", str(args.deadline), "--child", threads, load],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=Path(__file__).parent,
                    check=True,
                )
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row |= {"load": load, "spin": name, "gomp_spincount": spin}
                results.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "answers"}), flush=True)
    first = results[0]["answers"]
    for r in results:
        r["answers_equal_to_first"] = r["answers"] == first[: len(r["answers"])]
    meta = {"rows": args.rows, "cores": os.cpu_count(), "cpu": cpu_model()}
    meta["spin_semql"] = SPIN_COUNT
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"openmp-wait-{stamp}.json").write_text(json.dumps({**meta, "runs": results}, indent=1))
    lines = [
        f"# OpenMP barrier spin ({meta['cpu']}, {meta['cores']} cores, {args.rows} rows)\n",
        "| load | threads | spin (GOMP_SPINCOUNT) | rows/s | rows done | answers equal |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['load']} | {r['threads']} | {r['spin']} ({r['gomp_spincount']}) | "
            f"{r['rows_per_s']} | {r['rows']} | {r['answers_equal_to_first']} |"
        )
    (out / f"openmp-wait-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
