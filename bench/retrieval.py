"""Retrieval for LM calls: "Which movie is this review about?" over SemBench's movies.

For 300 distinct reviews of the shipped Reviews table (a seeded draw; nothing in SemQL's
retrieval was chosen by looking at them: BM25's constants are Robertson's, the fusion
constant is Cormack et al.'s 60, the question is the issue's), with the Movies table as
the collection (105 distinct films: title, director, writer, genre, release year):

- retrieval alone: recall@1/3/5 of the review's film (Reviews.id) among the rows
  retrieved by embeddings (the bundled MiniLM), BM25 and hybrid (reciprocal-rank fusion);
- end to end with the bundled model (Gemma 3 270M, cache off, greedy under the grammar):
  ``LLMMap(question, reviewText, context=(SELECT ... FROM Movies), k=K,
  options=(SELECT title FROM Movies))`` against the same call without retrieval (all
  titles as options, the prompt cannot list 105 of them);
- seconds: building the indexes on a fresh database file, reusing them in a new session,
  searching for the 300 reviews, and each end-to-end query.

    python bench/retrieval.py --out bench/results/retrieval
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import semql
from semql.executors.proxy.embedding_views import EmbeddingStore
from semql.executors.proxy.embeddings import MiniLMEmbedder
from semql.executors.retrieval.retriever import Retriever
from semql.sample import sample_dir

ROWS = 300
SEED = 20261201
QUESTION = "Which movie is this review about?"
MOVIES = "SELECT title, director, writer, genre, year(releaseDateTheaters) AS year FROM Movies"
WITH_RETRIEVAL = (
    "SELECT h.reviewId, {{{{LLMMap('{q}', h.reviewText, context=({movies}), k={k}, "
    "retrieval='{method}', options=(SELECT title FROM Movies))}}}} AS movie FROM Held h"
)
WITHOUT = (
    "SELECT h.reviewId, {{{{LLMMap('{q}', h.reviewText, "
    "options=(SELECT title FROM Movies))}}}} AS movie FROM Held h"
)
METHODS = ("embedding", "bm25", "hybrid")
KS = (1, 3, 5)


def connect(path: Path) -> semql.Connection:
    con = semql.connect(str(path), cache=False)
    for table in ("Movies", "Reviews"):
        if table.lower() not in [t.lower() for t in con.tables()]:
            con.duckdb.execute(
                f"CREATE TABLE {table} AS SELECT * FROM read_csv_auto(?)",
                [str(sample_dir() / f"{table}.csv")],
            )
    return con


def held_rows(con: semql.Connection) -> list[tuple]:
    rows = con.duckdb.execute(
        "SELECT reviewId, any_value(reviewText), any_value(id) FROM Reviews "
        "GROUP BY reviewId ORDER BY reviewId"
    ).fetchall()
    pick = np.random.default_rng(SEED).choice(len(rows), ROWS, replace=False)
    return [rows[i] for i in sorted(pick)]


def fetch_of(con: semql.Connection):
    def fetch(sql: str):
        cur = con.duckdb.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()

    return fetch


def retrieval_only(con, held, title_of) -> tuple[dict, dict]:
    """Recall@k per method, and the seconds of building and searching."""
    store, embedder = EmbeddingStore(con.duckdb.cursor()), MiniLMEmbedder()

    def call_for(method: str):
        sql = WITH_RETRIEVAL.format(q=QUESTION, movies=MOVIES, k=max(KS), method=method)
        return next(c for c in con.plan(sql).calls if c.retrieval is not None)

    call = call_for("hybrid")
    seconds = {}
    started = time.perf_counter()
    Retriever(fetch_of(con), store, embedder, "hybrid").collection(call)
    seconds["index build (fresh file: MiniLM embeddings + BM25)"] = time.perf_counter() - started
    recall: dict[str, dict[int, float]] = {}
    texts = [" ".join(text.split()) for _, text, _ in held]
    for method in METHODS:
        call = call_for(method)
        retriever = Retriever(fetch_of(con), store, embedder, method)
        started = time.perf_counter()
        coll = retriever.collection(call)
        seconds[f"index reuse ({method})"] = time.perf_counter() - started
        started = time.perf_counter()
        found = retriever.top_k(call, texts)
        seconds[f"search {ROWS} reviews ({method}; the first embeds them)"] = (
            time.perf_counter() - started
        )
        titles = [[coll.lines[j].split(" | ")[0] for j in rows] for rows in found]
        recall[method] = {
            k: float(
                np.mean([title_of[i] in t[:k] for (_, _, i), t in zip(held, titles, strict=True)])
            )
            for k in KS
        }
    return recall, seconds


def end_to_end(con, held, title_of, sql: str) -> dict:
    started = time.perf_counter()
    frame = con.query(sql)
    seconds = time.perf_counter() - started
    got = dict(zip(frame["reviewId"].to_list(), frame["movie"].to_list(), strict=True))
    right = [got.get(r) == title_of[i] for r, _, i in held]
    return {
        "accuracy": float(np.mean(right)),
        "seconds": seconds,
        "lm_calls": con.stats.lm_calls,
        "prompt_tokens": con.stats.prompt_tokens,
        "answers_distinct": len(set(got.values())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/retrieval")
    ap.add_argument("--k", type=int, nargs="+", default=[3], help="k of the end-to-end runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        title_of = dict(
            con.duckdb.execute("SELECT id, any_value(title) FROM Movies GROUP BY id").fetchall()
        )
        held = held_rows(con)
        con.duckdb.execute("CREATE TABLE Held (reviewId VARCHAR, reviewText VARCHAR, id VARCHAR)")
        con.duckdb.executemany(
            "INSERT INTO Held VALUES (?, ?, ?)", [tuple(map(str, r)) for r in held]
        )
        held = [(str(r), t, i) for r, t, i in held]
        recall, seconds = retrieval_only(con, held, title_of)
        runs = {
            "no retrieval (all 105 titles as options)": end_to_end(
                con, held, title_of, WITHOUT.format(q=QUESTION)
            )
        }
        for k in args.k:
            sql = WITH_RETRIEVAL.format(q=QUESTION, movies=MOVIES, k=k, method="hybrid")
            runs[f"hybrid retrieval, k={k}"] = end_to_end(con, held, title_of, sql)
        model = con.runtime.name
        con.close()
    report(Path(args.out), recall, seconds, runs, model)


def report(out: Path, recall, seconds, runs, model: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = {
        "rows": ROWS,
        "seed": SEED,
        "model": model,
        "recall": recall,
        "seconds": seconds,
        "end_to_end": runs,
    }
    (out / f"retrieval-{stamp}.json").write_text(json.dumps(results, indent=1))
    lines = [
        f'# Retrieval: "{QUESTION}" over {ROWS} held-apart reviews\n',
        f"Collection: `{MOVIES}` (105 distinct films). Model: {model}, cache off.\n",
        "## Recall of the review's film among the retrieved rows\n",
        "| method | " + " | ".join(f"recall@{k}" for k in KS) + " |",
        "|---|" + "---|" * len(KS),
    ]
    for method, by_k in recall.items():
        lines.append(f"| {method} | " + " | ".join(f"{by_k[k]:.3f}" for k in KS) + " |")
    lines += [
        "",
        "## End to end (answer = the review's film)\n",
        "| query | accuracy | seconds | LM calls | prompt tokens | distinct answers |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        lines.append(
            f"| {name} | {r['accuracy']:.3f} | {r['seconds']:.0f} | {r['lm_calls']} "
            f"| {r['prompt_tokens']} | {r['answers_distinct']} |"
        )
    lines += ["", "## Seconds\n", "| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {s:.2f} |" for name, s in seconds.items()]
    (out / f"retrieval-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
