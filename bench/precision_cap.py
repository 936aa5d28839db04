"""Precision-first LIMIT's sample size: quality and LM calls of ``LIMIT k`` at each.

``LIMIT k`` over one LM condition ranks the candidate rows whose arguments are among the
first ``precision_first`` distinct tuples in hash order (every candidate when there are
that few, else a fixed sample), then fills the LIMIT with the first passing rows after
them when fewer pass (planner.logical.RankLimit); 0 keeps the first k rows that pass.
This runs real queries through ``semql.query`` with the bundled model on tasks built from
the shipped reviews, none of them SemBench's (its query movies are left out), and reports
precision@k and the rows the LM operator answered at each size.

The tasks, chosen by size alone (no label was looked at to pick them):

- ``movie``: every other movie with at least 10 distinct reviews, ``WHERE id = '<movie>'``
  (10 to 54 candidates);
- ``year``: every year with at least 50 such reviews, ``WHERE year(creationDate) = <y>``
  (78 to 487 candidates);
- ``top critics``: ``WHERE isTopCritic AND id NOT IN (<query movies>)`` (hundreds);
- ``all``: ``WHERE id NOT IN (<query movies>)`` (over a thousand).

each asked for positive and for negative reviews, in several wordings written for this
bench (yes/no questions, and one ``options=`` call, which the second judge also ranks).
The result cache is on, so each row is answered once per wording; the calls reported are
the rows the operator answered (LM calls plus cache hits), the cost of a cold run.

    python bench/precision_cap.py --out bench/results/precision [--caps 0 16 64 256]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from stored_scores import QUERY_MOVIES

import semql
from semql.sample import sample_dir

CAPS = (0, 16, 64, 256, 1024)
K = 3
MIN_REVIEWS = 10
MIN_YEAR_REVIEWS = 50
# (name, the condition on reviewText, the label a passing row must have)
CONDITIONS = (
    ("positive: yes/no", "{{LLMMap('Is this review positive?', reviewText)}} = TRUE", "POSITIVE"),
    (
        "positive: liked",
        "{{LLMMap('Did the critic enjoy the film?', reviewText)}} = TRUE",
        "POSITIVE",
    ),
    (
        "positive: options",
        "{{LLMMap('What is the tone of this review?', reviewText, "
        "options=('positive', 'negative'))}} = 'positive'",
        "POSITIVE",
    ),
    ("negative: yes/no", "{{LLMMap('Is this review negative?', reviewText)}} = TRUE", "NEGATIVE"),
    (
        "negative: disliked",
        "{{LLMMap('Did the critic dislike the film?', reviewText)}} = TRUE",
        "NEGATIVE",
    ),
    (
        "negative: options",
        "{{LLMMap('What is the tone of this review?', reviewText, "
        "options=('positive', 'negative'))}} = 'negative'",
        "NEGATIVE",
    ),
)


def connect(path: Path) -> semql.Connection:
    con = semql.connect(str(path), cache=True)
    con.duckdb.execute(
        "CREATE TABLE IF NOT EXISTS Reviews AS SELECT * FROM read_csv_auto(?)",
        [str(sample_dir() / "Reviews.csv")],
    )
    return con


def tasks(con: semql.Connection) -> list[tuple[str, str, int]]:
    """(task, relational WHERE, distinct candidate reviews), chosen by size alone."""
    outside = "id NOT IN (" + ", ".join(f"'{m}'" for m in sorted(QUERY_MOVIES)) + ")"
    rows = con.duckdb.execute(
        f"SELECT id, count(DISTINCT reviewId) FROM Reviews WHERE {outside} "
        "GROUP BY id HAVING count(DISTINCT reviewId) >= ? ORDER BY id",
        [MIN_REVIEWS],
    ).fetchall()
    out = [(f"movie {m}", f"id = '{m}'", n) for m, n in rows]
    years = con.duckdb.execute(
        f"SELECT year(creationDate), count(DISTINCT reviewId) FROM Reviews WHERE {outside} "
        "GROUP BY 1 HAVING count(DISTINCT reviewId) >= ? ORDER BY 1",
        [MIN_YEAR_REVIEWS],
    ).fetchall()
    out += [(f"year {y}", f"year(creationDate) = {y} AND {outside}", n) for y, n in years]
    for name, where in (("top critics", f"isTopCritic AND {outside}"), ("all", outside)):
        (n,) = con.duckdb.execute(
            f"SELECT count(DISTINCT reviewId) FROM Reviews WHERE {where}"
        ).fetchone()
        out.append((name, where, n))
    return out


def run_one(con, where: str, condition: str, label: str, cap: int) -> dict:
    sql = f"SELECT reviewId FROM Reviews WHERE {where} AND {condition} LIMIT {K}"
    got = con.query(sql, precision_first=cap)["reviewId"].to_list()
    right = 0
    if got:
        marks = ", ".join("?" for _ in got)
        (right,) = con.duckdb.execute(
            f"SELECT count(DISTINCT reviewId) FROM Reviews WHERE reviewId IN ({marks}) "
            "AND scoreSentiment = ?",
            [*got, label],
        ).fetchone()
    (valid,) = con.duckdb.execute(
        f"SELECT count(DISTINCT reviewId) FROM Reviews WHERE {where} AND scoreSentiment = ?",
        [label],
    ).fetchone()
    return {
        "returned": len(got),
        "right": int(right),
        "valid": int(valid),
        "calls": con.stats.lm_calls + con.stats.cache_hits,
    }


def f1(r: dict) -> float:
    """SemBench's LIMIT scoring: precision over the rows returned, recall min(valid, k) /
    min(k, |truth|); no truth and nothing returned counts as 1."""
    if r["valid"] == 0:
        return 1.0 if r["returned"] == 0 else 0.0
    if r["returned"] == 0:
        return 0.0
    p = r["right"] / r["returned"]
    rec = min(r["right"], K) / min(K, r["valid"])
    return 0.0 if p + rec == 0 else 2 * p * rec / (p + rec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/precision")
    ap.add_argument("--db", help="database file to keep (its result cache makes a re-run cheap)")
    ap.add_argument("--caps", type=int, nargs="+", default=list(CAPS))
    args = ap.parse_args()
    caps = tuple(args.caps)
    results: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(args.db) if args.db else Path(tmp) / "bench.duckdb")
        built = tasks(con)
        for name, condition, label in CONDITIONS:
            for cap in sorted(caps, reverse=True):  # the widest first fills the cache
                for task, where, n in built:
                    r = run_one(con, where, condition, label, cap)
                    results.append({"condition": name, "cap": cap, "task": task, "n": n, **r})
                print(f"{name} cap {cap}: {time.perf_counter() - started:.0f} s", flush=True)
        model = con.runtime.name
        con.close()
    report(Path(args.out), results, model, time.perf_counter() - started, caps)


def report(out: Path, results: list[dict], model: str, seconds: float, caps: tuple) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"precision-cap-{stamp}.json").write_text(
        json.dumps({"model": model, "k": K, "caps": caps, "results": results}, indent=1)
    )
    groups = {
        "movies": lambda r: r["task"].startswith("movie "),
        "years": lambda r: r["task"].startswith("year "),
        "top critics": lambda r: r["task"] == "top critics",
        "all": lambda r: r["task"] == "all",
    }
    sizes = {g: sorted({r["n"] for r in results if keep(r)}) for g, keep in groups.items()}
    lines = [
        f"# Precision-first LIMIT {K}: quality and LM calls against its sample size\n",
        f"Model: {model}; real queries through `semql.query`, result cache on (calls = rows "
        f"the LM operator answered, as a cold run would); {len(CONDITIONS)} conditions "
        f"(positive and negative, three wordings each); SemBench's query movies left out; "
        f"{seconds:.0f} s in all.\n",
        "Candidates per task: "
        + "; ".join(f"{g}: {s[0]}-{s[-1]}" for g, s in sizes.items())
        + "\n",
        "## Mean over all tasks and conditions\n",
        "| precision_first | precision | F1 (SemBench's LIMIT scoring) | LM calls per query "
        "| share with every candidate ranked |",
        "|---|---|---|---|---|",
    ]

    def row(rs: list[dict]) -> tuple[float, float, float]:
        prec = [r["right"] / r["returned"] for r in rs if r["returned"]]
        return (
            float(np.mean(prec)),
            float(np.mean([f1(r) for r in rs])),
            float(np.mean([r["calls"] for r in rs])),
        )

    for cap in caps:
        rs = [r for r in results if r["cap"] == cap]
        p, f, c = row(rs)
        ranked = np.mean([r["n"] <= cap for r in rs]) if cap else 0.0
        lines.append(f"| {cap} | {p:.3f} | {f:.3f} | {c:.1f} | {ranked:.0%} |")
    lines += ["", "## By task group and condition (precision / LM calls)\n"]
    header = "| group | condition | " + " | ".join(f"{c}" for c in caps) + " |"
    lines += [header, "|---|---|" + "---|" * len(caps)]
    for g, keep in groups.items():
        for name, _, _ in CONDITIONS:
            cells = []
            for cap in caps:
                rs = [r for r in results if keep(r) and r["condition"] == name and r["cap"] == cap]
                p, _, c = row(rs)
                cells.append(f"{p:.2f} / {c:.0f}")
            lines.append(f"| {g} | {name} | " + " | ".join(cells) + " |")
    (out / f"precision-cap-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
