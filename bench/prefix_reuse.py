"""Prefix reuse: the table layout (default: fields as written, rows sorted by them) vs
column order (seed 002) vs GGR (seed 003), and the table layout with the shared field
written first.

1. An LM map with two fields over SemBench movie (reviews joined with their movie's
   title), run on the bundled model with each prompt layout, cache off, same runtime:
   token hit rate (prompt tokens served from the KV cache), PHC, LM seconds, and how
   often the answers agree with the table-order answers (the layout is part of what
   the model reads; the row order never changes an answer).
2. Reorder time and PHC on synthetic 100k x 6 tables: column order, the vectorised GGR
   and Algorithm 1 as written (planner/prefix/reference.py).

    python bench/prefix_reuse.py --rows 600 --out bench/results/prefix
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import semql
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.planner.prefix.column_order import column_order, table_order
from semql.planner.prefix.ggr import ggr
from semql.planner.prefix.phc import prefix_hit_count
from semql.planner.prefix.reference import ggr_plain
from semql.planner.prefix.table import CodedTable

SQL = """
SELECT r.reviewId,
       {{{{LLMMap('Does the review praise the movie?', {fields},
                  return_type='bool')}}}} AS praise
FROM (SELECT * FROM Reviews ORDER BY reviewId LIMIT {rows}) r
JOIN (SELECT DISTINCT id, title FROM Movies) m ON r.id = m.id
ORDER BY r.reviewId
"""
# (name, prefix_order, fields as written): "table" is the default (fields as written,
# rows sorted by them); "table, title first" is what a user gets by writing the shared
# field first.
REVIEW_FIRST, TITLE_FIRST = "r.reviewText, m.title", "m.title, r.reviewText"
LAYOUTS = (
    ("table", "table", REVIEW_FIRST),
    ("column", "column", REVIEW_FIRST),
    ("ggr", "ggr", REVIEW_FIRST),
    ("table, title first", "table", TITLE_FIRST),
)


def lm_map(rows: int) -> list[dict]:
    runtime = LlamaRuntime(default_model_path(), seed=0)
    out, answers = [], {}
    for layout, order, fields in LAYOUTS:
        con = semql.connect(runtime=runtime, cache=False, prefix_order=order)
        semql.load_sample(con)
        con.query(SQL.format(rows=4, fields=fields))  # grammar compiled, model warm
        started = time.perf_counter()
        frame = con.query(SQL.format(rows=rows, fields=fields))
        wall = time.perf_counter() - started
        s = con.stats
        answers[layout] = frame["praise"].to_list()
        agree = np.mean([a == b for a, b in zip(answers["table"], answers[layout], strict=True)])
        out.append(
            {
                "layout": layout,
                "rows": frame.height,
                "lm_calls": s.lm_calls,
                "prompt_tokens": s.prompt_tokens,
                "cached_prompt_tokens": s.cached_prompt_tokens,
                "token_hit_rate": round(s.token_hit_rate, 4),
                "phc": s.prefix_hit_count,
                "lm_seconds": round(sum(op.seconds for op in s.operators), 2),
                "wall_seconds": round(wall, 2),
                "agreement_with_table_order": round(float(agree), 4),
            }
        )
        print(out[-1], flush=True)
        con._runtime = None
        con.close()
    runtime.close()
    return out


def synthetic(n: int, kind: str, seed: int = 1) -> CodedTable:
    """n x 6 codes: categorical fields of growing cardinality, one unique key field."""
    rng = np.random.default_rng(seed)
    cards = [8, 60, 500, 4000, 30000, n]
    cols = []
    for c in cards:
        if c == n:
            cols.append(rng.permutation(n))
        elif kind == "zipf":
            cols.append(rng.zipf(1.5, size=n) % c)
        else:
            cols.append(rng.integers(0, c, size=n))
    return CodedTable.from_codes(
        np.stack(cols, axis=1), [rng.integers(5, 120, size=c) for c in cards]
    )


def reorder_times(n: int) -> list[dict]:
    out = []
    for kind in ("uniform", "zipf"):
        table = synthetic(n, kind)
        for name, fn in (
            ("table", table_order),
            ("column", column_order),
            ("ggr", ggr),
            ("algorithm1", ggr_plain),
        ):
            started = time.perf_counter()
            order = fn(table)
            seconds = time.perf_counter() - started
            row = {"data": kind, "rows": n, "fields": 6, "order": name}
            row |= {"seconds": round(seconds, 3), "phc": prefix_hit_count(table, order)}
            out.append(row)
            print(row, flush=True)
    return out


def markdown(lm: list[dict], reorder: list[dict]) -> str:
    lines = [
        "## LM map over Reviews JOIN Movies (reviewText, title), bundled Gemma 270M",
        "",
        "| layout | LM calls | prompt tok | KV-cached | token hit rate | PHC | LM s | "
        "agree w/ table |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in lm:
        lines.append(
            f"| {r['layout']} | {r['lm_calls']} | {r['prompt_tokens']} | "
            f"{r['cached_prompt_tokens']} | {r['token_hit_rate']:.1%} | {r['phc']} | "
            f"{r['lm_seconds']} | {r['agreement_with_table_order']:.1%} |"
        )
    lines += ["", "## Reorder time, 100k x 6 synthetic", "", "| data | order | seconds | PHC |"]
    lines.append("|---|---|---|---|")
    for r in reorder:
        lines.append(f"| {r['data']} | {r['order']} | {r['seconds']} | {r['phc']:.4g} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=600, help="reviews in the LM map")
    ap.add_argument("--synthetic-rows", type=int, default=100_000)
    ap.add_argument("--skip-lm", action="store_true", help="only the reorder timings")
    ap.add_argument("--out", default="bench/results/prefix")
    args = ap.parse_args()
    lm = [] if args.skip_lm else lm_map(args.rows)
    reorder = reorder_times(args.synthetic_rows)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    meta = {"machine": platform.processor() or platform.machine(), "stamp": stamp}
    (folder / f"prefix-{stamp}.json").write_text(
        json.dumps({"meta": meta, "lm_map": lm, "reorder": reorder}, indent=2)
    )
    (folder / f"prefix-{stamp}.md").write_text(markdown(lm, reorder))
    print(markdown(lm, reorder))


if __name__ == "__main__":
    main()
