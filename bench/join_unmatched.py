"""LLMJoin's choices, on left values built by hand: all right values (the old way) vs
the few closest in spelling plus "none of these" (executors/operators/join_candidates.py).

The right side is the shipped Movies table's 105 titles. The left side: 20 of those
titles written another way (lower case, a dropped article or subtitle, a year added, a
sequel number: each has one right answer) and 10 titles of films the table does not
have (each should stay unmatched). Every left value is asked once with the join's
default criteria, bundled model:

- ``all titles, forced``: the 105 titles as options (greedy under the grammar; past 50
  options the prompt does not list them), every value forced onto one;
- ``8 candidates``: the 8 titles closest in character trigrams, listed, scored whole;
- ``8 candidates + none``: the same plus "none of these" (SemQL's LLMJoin).

Also how often the right title is among the 8 candidates at all (the ceiling).

    python bench/join_unmatched.py --out bench/results/join
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from semql.executors.lm.lm_executor import LMExecutor
from semql.executors.lm.result_cache import ResultCache
from semql.executors.lm.stats import OperatorStats
from semql.executors.operators.join_candidates import Candidates
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/join")
    args = ap.parse_args()
    with open(sample_dir() / "Movies.csv", newline="") as f:
        titles = tuple(sorted({r["title"] for r in csv.DictReader(f)}))
    runtime = LlamaRuntime(default_model_path(), seed=0)
    lm = LMExecutor(runtime, ResultCache(None))
    left = [*PRESENT, *ABSENT]
    pick = Candidates(titles)
    results = {
        "ceiling": {"present_in_candidates": sum(t in pick.of(v) for v, t in PRESENT.items())}
    }
    for name in ("all titles, forced", "8 candidates", "8 candidates + none"):
        started = time.perf_counter()
        got = {}
        for value in left:
            if name == "all titles, forced":
                options = titles
            else:
                options = pick.of(value) + ((pick.none,) if name.endswith("none") else ())
            (got[value],) = lm.answer(
                QUESTION,
                OptionsType(options),
                ["value"],
                [(value,)],
                OperatorStats(name),
                calibration="off",
            )
        results[name] = {
            "present_right": sum(got[v] == t for v, t in PRESENT.items()),
            "present_unmatched": sum(got[v] == pick.none for v in PRESENT),
            "absent_unmatched": sum(got[v] == pick.none for v in ABSENT),
            "seconds": round(time.perf_counter() - started, 1),
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
    lines.insert(
        1,
        f"The right title is among the 8 candidates for "
        f"{results['ceiling']['present_in_candidates']}/20 present values.\n",
    )
    for name, r in results.items():
        if name == "ceiling":
            continue
        lines.append(
            f"| {name} | {r['present_right']}/20 | {r['present_unmatched']}/20 "
            f"| {r['absent_unmatched']}/10 |"
        )
    (out / f"join-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
