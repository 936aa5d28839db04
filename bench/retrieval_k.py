"""Retrieval's default ``k``: end-to-end accuracy at k = 1, 3, 5 over several tasks.

Every task asks about SemBench's Movies table through ``LLMMap(..., context=(<the films>),
k=K)`` with the bundled model (cache off), so the rows a question retrieves are the only
films the model reads. Two kinds of question:

- *which row*: the answer is a retrieved film's title (``options=`` the titles):
  "Which movie is this review about?" for 150 seeded reviews (the review text is the
  question), and "Which film did <director> direct?" for every director;
- *what about it*: the answer is a field of the film the question names: "Who directed
  <title>?" (``options=`` the directors), "What is the rating of <title>?" (``options=``
  the four ratings) and "In which year was <title> released?" (an int).

The questions are templates filled from the table, and the gold answers are the table's
own fields (a director with several films accepts any of them); nothing was chosen by
looking at answers. Also reported: how often the gold film is among the k rows retrieved
(what a perfect reader of the prompt could reach).

    python bench/retrieval_k.py --out bench/results/retrieval
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from retrieval import connect, fetch_of, held_rows

import semql

KS = (1, 3, 5)
REVIEWS = 150
FILMS = (
    "SELECT title, director, writer, genre, rating, year(releaseDateTheaters) AS year FROM Movies"
)
QUERY = (
    "SELECT q.qid, {{{{LLMMap('{ask}', q.{field}, context=({films}), k={k}{answer})}}}} "
    "AS a FROM Questions q"
)
# task -> (kind, LLMMap's question, its answer argument)
TASKS = {
    "review -> its film": ("which row", "Which movie is this review about?", "title"),
    "director -> a film of theirs": ("which row", "Answer the question.", "title"),
    "title -> its director": ("what about it", "Answer the question.", "director"),
    "title -> its rating": ("what about it", "Answer the question.", "rating"),
    "title -> its release year": ("what about it", "Answer the question.", None),
}


def questions(con: semql.Connection, task: str) -> list[tuple[str, str, set, set]]:
    """(qid, question text, gold answers, gold films' titles) of one task."""
    rows = con.duckdb.execute(
        "SELECT any_value(title), any_value(director), any_value(rating), "
        "any_value(year(releaseDateTheaters)) FROM Movies GROUP BY title ORDER BY title"
    ).fetchall()
    if task == "review -> its film":
        title_of = dict(
            con.duckdb.execute("SELECT id, any_value(title) FROM Movies GROUP BY id").fetchall()
        )
        picked = held_rows(con)[:REVIEWS]
        return [(str(r), t, {title_of[i]}, {title_of[i]}) for r, t, i in picked]
    if task == "director -> a film of theirs":
        films: dict[str, set] = {}
        for title, director, _, _ in rows:
            films.setdefault(director, set()).add(title)
        return [
            (f"d{n}", f"Which film did {d} direct?", t, t)
            for n, (d, t) in enumerate(sorted(films.items()))
        ]
    field, template = {
        "title -> its director": (1, "Who directed {}?"),
        "title -> its rating": (2, "What is the rating of {}?"),
        "title -> its release year": (3, "In which year was {} released?"),
    }[task]
    return [(f"t{n}", template.format(r[0]), {r[field]}, {r[0]}) for n, r in enumerate(rows)]


def run_task(con: semql.Connection, task: str, k: int) -> dict:
    kind, ask, answer = TASKS[task]
    qs = questions(con, task)
    field = "review" if task == "review -> its film" else "question"
    con.duckdb.execute(f"CREATE OR REPLACE TABLE Questions (qid VARCHAR, {field} VARCHAR)")
    con.duckdb.executemany("INSERT INTO Questions VALUES (?, ?)", [q[:2] for q in qs])
    arg = f", options=(SELECT {answer} FROM Movies)" if answer else ", return_type='int'"
    sql = QUERY.format(ask=ask, field=field, films=FILMS, k=k, answer=arg)
    frame = con.query(sql)
    got = dict(zip(frame["qid"].to_list(), frame["a"].to_list(), strict=True))
    right = [got.get(qid) in gold for qid, _, gold, _ in qs]
    return {
        "kind": kind,
        "questions": len(qs),
        "accuracy": float(np.mean(right)),
        "lm_calls": con.stats.lm_calls,
        "prompt_tokens": con.stats.prompt_tokens,
        "retrieved": retrieved_share(con, sql, qs, k),
    }


def retrieved_share(con, sql: str, qs, k: int) -> float:
    """Share of questions whose gold film is among the k rows retrieved for them."""
    from semql.executors.proxy.embedding_views import EmbeddingStore
    from semql.executors.proxy.embeddings import MiniLMEmbedder
    from semql.executors.retrieval.retriever import Retriever

    call = next(c for c in con.plan(sql).calls if c.retrieval is not None)
    retriever = Retriever(
        fetch_of(con), EmbeddingStore(con.duckdb.cursor()), MiniLMEmbedder(), "hybrid"
    )
    coll = retriever.collection(call)
    found = retriever.top_k(call, [" ".join(q[1].split()) for q in qs])
    titles = [{coll.lines[j].split(" | ")[0] for j in rows[:k]} for rows in found]
    return float(np.mean([bool(t & q[3]) for t, q in zip(titles, qs, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/retrieval")
    args = ap.parse_args()
    results: dict[str, dict[int, dict]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        for task in TASKS:
            results[task] = {}
            for k in KS:
                results[task][k] = run_task(con, task, k)
                print(f"{task} k={k}: {results[task][k]}", flush=True)
        model = con.runtime.name
        con.close()
    report(Path(args.out), results, model, time.perf_counter() - started)


def report(out: Path, results: dict, model: str, seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"retrieval-k-{stamp}.json").write_text(
        json.dumps({"model": model, "films": FILMS, "results": results}, indent=1)
    )
    lines = [
        "# Retrieval's k: accuracy end to end, by task\n",
        f"Model: {model}, cache off, hybrid retrieval over `{FILMS}` (105 films); "
        f"{seconds:.0f} s in all. Cell: accuracy (share of questions whose film was "
        "retrieved).\n",
        "| task | kind | questions | " + " | ".join(f"k={k}" for k in KS) + " |",
        "|---|---|---|" + "---|" * len(KS),
    ]
    for task, by_k in results.items():
        first = by_k[KS[0]]
        cells = [f"{by_k[k]['accuracy']:.3f} ({by_k[k]['retrieved']:.2f})" for k in KS]
        lines.append(
            f"| {task} | {first['kind']} | {first['questions']} | " + " | ".join(cells) + " |"
        )
    means = [np.mean([by_k[k]["accuracy"] for by_k in results.values()]) for k in KS]
    lines.append("| mean of the tasks | | | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    tokens = [sum(by_k[k]["prompt_tokens"] for by_k in results.values()) for k in KS]
    lines.append("| prompt tokens, all tasks | | | " + " | ".join(str(t) for t in tokens) + " |")
    (out / f"retrieval-k-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
