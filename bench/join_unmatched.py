"""LLMJoin with and without a "none of these" label, on left values built by hand.

The right side is the shipped Movies table's 105 titles. The left side: 20 of those
titles written another way (lower case, a dropped article or subtitle, a year added:
each has one right answer) and 10 titles of films the table does not have (each should
stay unmatched). Every left value is asked once, as SemQL's LLMJoin asks it (the join
criteria, the value, all titles as options; bundled model, greedy under the grammar),
with the right titles only (the old behaviour: every value is forced onto a title) and
with one more label, "none of these" (SemQL's default). No value is scored by any
method that sees its answer.

    python bench/join_unmatched.py --out bench/results/join
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from semql.executors.llama_runtime import LlamaRuntime
from semql.executors.lm_executor import LMExecutor
from semql.executors.model_files import default_model_path
from semql.executors.result_cache import ResultCache
from semql.executors.stats import OperatorStats
from semql.grammar.types import OptionsType
from semql.sample import sample_dir

QUESTION = "Match each left value to the right value it refers to."
PRESENT = {  # left value -> the title it refers to
    "the batman": "The Batman",
    "Batman (2022)": "The Batman",
    "Dune (2021)": "Dune",
    "get out 2017": "Get Out",
    "Parasite (Gisaengchung)": "Parasite",
    "Quiet Place": "A Quiet Place",
    "Star Is Born": "A Star Is Born",
    "Black Panther 2": "Black Panther: Wakanda Forever",
    "Top Gun Maverick": "Top Gun: Maverick",
    "Mission Impossible Fallout": "Mission: Impossible - Fallout",
    "Knives Out 2": "Glass Onion: A Knives Out Mystery",
    "Spiderman No Way Home": "Spider-Man: No Way Home",
    "Into the Spider-Verse": "Spider-Man: Into the Spider-Verse",
    "Avatar 2": "Avatar: The Way of Water",
    "Endgame": "Avengers: Endgame",
    "Thor 4": "Thor: Love and Thunder",
    "Guardians of the Galaxy 2": "Guardians of the Galaxy Vol. 2",
    "Birds of Prey": "Birds of Prey (and the Fantabulous Emancipation of One Harley Quinn)",
    "Three Billboards": "Three Billboards Outside Ebbing, Missouri",
    "Once Upon a Time in Hollywood": "Once Upon a Time... In Hollywood",
}
ABSENT = [
    "The Godfather",
    "Casablanca",
    "Oppenheimer",
    "Barbie",
    "The Matrix",
    "Titanic",
    "Pulp Fiction",
    "Inception",
    "Frozen",
    "Gladiator",
]
NONE = "none of these"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/join")
    args = ap.parse_args()
    with open(sample_dir() / "Movies.csv", newline="") as f:
        titles = tuple(sorted({r["title"] for r in csv.DictReader(f)}))
    runtime = LlamaRuntime(default_model_path(), seed=0)
    lm = LMExecutor(runtime, ResultCache(None))
    left = [*PRESENT, *ABSENT]
    results = {}
    for name, options in (("forced", titles), ("none label", (*titles, NONE))):
        started = time.perf_counter()
        answers = lm.answer(
            QUESTION,
            OptionsType(options),
            ["value"],
            [(v,) for v in left],
            OperatorStats(name),
            dedup=True,
        )
        seconds = time.perf_counter() - started
        got = dict(zip(left, answers, strict=True))
        results[name] = {
            "present_right": sum(got[v] == t for v, t in PRESENT.items()),
            "present_unmatched": sum(got[v] == NONE for v in PRESENT),
            "absent_unmatched": sum(got[v] == NONE for v in ABSENT),
            "seconds": round(seconds, 1),
            "answers": got,
        }
        print(name, {k: v for k, v in results[name].items() if k != "answers"}, flush=True)
    runtime.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"join-{stamp}.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# LLMJoin: 20 titles written another way, 10 films not in the table (bundled Gemma)\n",
        "| labels | present: right title | present: left unmatched | absent: left unmatched |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['present_right']}/20 | {r['present_unmatched']}/20 "
            f"| {r['absent_unmatched']}/10 |"
        )
    (out / f"join-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
