"""Proxy models on SemBench movie sentiment: LM on every row vs a 0.95 agreement target.

All 2,000 reviews, the bundled model, result cache off, one database file. Three runs of
the same LLMMap: (1) the LM on every row; (2) with ``accuracy=TARGET`` — the LM labels a
sample, a classifier on embeddings answers the rows it is sure of, embeddings are
computed and stored; (3) the same again, embeddings already stored. Reports wall time,
rows answered by the LM, agreement with run (1), and accuracy against SemBench's ground
truth for each; writes JSON, markdown and the projection curve (PNG).

    python bench/proxy_sentiment.py --target 0.95 --out bench/results/proxy
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl

import semql
from semql.proxy_curve import save_report_curve
from semql.sample import sample_dir

QUERY = """
SELECT reviewId, {{{{LLMMap('What is the sentiment of this movie review?', reviewText,
    options=('positive', 'negative'),
    examples=(('A joyless, plodding mess that wastes its talented cast.', 'negative'),
              ('Funny, warm and beautifully made: a delight from start to finish.', 'positive'),
              ('It has a few good moments, but mostly it drags.', 'negative'),
              ('A thrilling, confident film that earns every one of its surprises.', 'positive'))
    {extra})}}}} AS sentiment
FROM Reviews ORDER BY reviewId
"""


def report_of(con) -> object | None:
    reports = con.proxy_reports()
    return reports[0] if reports else None


def run(con, extra: str) -> tuple[pl.DataFrame, float]:
    started = time.perf_counter()
    frame = con.query(QUERY.format(extra=extra))
    return frame, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--embedder", default="auto")
    ap.add_argument("--out", default="bench/results/proxy")
    args = ap.parse_args()
    truth = pl.read_csv(sample_dir() / "Reviews.csv").select("reviewId", "scoreSentiment")
    with tempfile.TemporaryDirectory() as tmp:
        con = semql.connect(str(Path(tmp) / "bench.duckdb"), cache=False, embedder=args.embedder)
        semql.load_sample(con)
        run(con, ", accuracy=0.9")  # nothing measured: loads the model and the embedders
        rows = []
        lm_frame, lm_seconds = run(con, "")
        lm_answers = lm_frame["sentiment"].to_list()
        results = {"lm": (lm_frame, lm_seconds, con.stats.lm_calls, None)}
        for name in ("proxy_first", "proxy_stored"):
            if name == "proxy_first":  # drop the stored vectors of the warm-up
                for (table,) in con.duckdb.execute("SELECT name FROM semql_embed.views").fetchall():
                    con.duckdb.execute(f"DELETE FROM {table}")
            frame, seconds = run(con, f", accuracy={args.target}")
            results[name] = (frame, seconds, con.stats.lm_calls, report_of(con))
        for name, (frame, seconds, calls, report) in results.items():
            answers = frame["sentiment"].to_list()
            joined = frame.join(truth, on="reviewId")
            acc = (joined["sentiment"].str.to_uppercase() == joined["scoreSentiment"]).mean()
            agree = sum(a == b for a, b in zip(answers, lm_answers, strict=True)) / len(answers)
            row = {
                "run": name,
                "rows": frame.height,
                "seconds": round(seconds, 1),
                "lm_calls": calls,
                "lm_share": round(calls / frame.height, 3),
                "agreement_with_lm": round(agree, 4),
                "accuracy_vs_truth": round(float(acc), 4),
            }
            if report is not None:
                row["proxy"] = report.summary()
                row["candidates"] = report.candidates
                row["curve"] = report.curve
                row["curve_params"] = report.curve_params
            rows.append(row)
            print(row, flush=True)
        con.close()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (folder / f"proxy-{stamp}.json").write_text(json.dumps(rows, indent=2, default=str))
    lines = [
        f"## SemBench movie sentiment, {rows[0]['rows']} reviews, target {args.target}",
        "",
        "| run | seconds | LM calls | LM share | agreement with LM | accuracy vs truth |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['seconds']} | {r['lm_calls']} | {r['lm_share']:.1%} | "
            f"{r['agreement_with_lm']:.3f} | {r['accuracy_vs_truth']:.3f} |"
        )
    lines += [""] + [f"- {r['run']}: {r['proxy']}" for r in rows if "proxy" in r]
    (folder / f"proxy-{stamp}.md").write_text("\n".join(lines) + "\n")
    last = results["proxy_first"][3]
    if last is not None and not last.reason:
        save_report_curve(last, folder / f"proxy-{stamp}-curve.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
