"""Same answers, LM calls and prompt tokens: naive and optimized plans, and two versions
of the code (a refactor of the planner or engine must change none of them).

Runs every SemBench movie query on a deterministic sample of rows with the bundled
model and the result cache off, in both configs, and writes each query's result (its
rows, sorted), LM calls and prompt tokens to JSON. ``--compare A.json B.json`` reports
every query where two such files differ (and exits 1 if any does).

    python bench/plan_equivalence.py --rows 300 --out bench/results/equivalence
    python bench/plan_equivalence.py --compare before.json after.json

To measure the code before a change, run this file with the older checkout's packages
first on ``PYTHONPATH``; it uses only the public API.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import semql
from semql.sembench import scenario

CONFIGS = {"naive": {"optimize": False}, "optimized": {}}


def run(rows: int) -> dict:
    scen = scenario.load("movie")
    out: dict = {}
    for config, options in CONFIGS.items():
        with semql.connect(cache=False, **options) as con:
            scen.register(con, rows)
            for q in scen.queries:
                started = time.perf_counter()
                frame = con.query(q.sql)
                result = sorted(json.dumps(r, default=str) for r in frame.rows())
                out[f"{config} {q.name}"] = {
                    "rows": result,
                    "lm_calls": con.stats.lm_calls,
                    "calibration_calls": con.stats.calibration_calls,
                    "prompt_tokens": con.stats.prompt_tokens,
                    "seconds": round(time.perf_counter() - started, 2),
                }
                print(f"{config:9s} {q.name:4s} {con.stats.lm_calls:5d} LM calls", flush=True)
    return out


def compare(a: dict, b: dict) -> list[str]:
    """One line per query and figure where the two runs differ (seconds aside)."""
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            lines.append(f"{key}: only in one run")
            continue
        for what in ("rows", "lm_calls", "calibration_calls", "prompt_tokens"):
            if a[key].get(what) != b[key].get(what):
                lines.append(f"{key}: {what} differ")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/results/equivalence"))
    parser.add_argument("--label", default="", help="a name for this run's file")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = parser.parse_args(argv)
    if args.compare:
        a, b = (json.loads(p.read_text())["queries"] for p in args.compare)
        diffs = compare(a, b)
        lines = diffs or [
            f"identical: {len(a)} query runs (rows, LM calls, calibration calls, prompt tokens)"
        ]
        names = {k.split()[1] for k in b}
        apart = [n for n in sorted(names) if b[f"naive {n}"]["rows"] != b[f"optimized {n}"]["rows"]]
        lines.append(f"naive vs optimized answers differ in: {', '.join(apart) or 'none'}")
        a_name, b_name = args.compare[0].stem, args.compare[1].stem
        text = f"# {b_name} against {a_name}\n\n" + "\n".join(f"- {x}" for x in lines) + "\n"
        args.compare[1].with_name(f"{b_name}-vs-{a_name}.md").write_text(text)
        print(text)
        return 1 if diffs else 0
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    queries = run(args.rows)
    meta = {
        "rows": args.rows,
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "semql": semql.__file__,
    }
    path = args.out / f"equivalence-{args.label + '-' if args.label else ''}{stamp}.json"
    path.write_text(json.dumps({"meta": meta, "queries": queries}, indent=1))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
