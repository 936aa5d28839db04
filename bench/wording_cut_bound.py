"""How much of the spread between wordings any decision rule could remove: a bound.

Every decision method in bench/wording_report.py decides a row from one wording's scores
by where it puts the cut between the labels; none changes how that wording *ranks* the
rows. This script puts the cut where the labels say it is best (the threshold on the
positive side's log-odds with the highest macro-F1 on those very rows), separately for
every wording, task, example set and population. That is not a method (it reads the
labels it is scored on); it is the most any cut-placing rule can reach. If its spread
between wordings is not below half of content_free's, no calibration, prior or threshold
can bring the spread there: what is left is how each wording ranks the rows.

Two-label tasks only (the 1-5 score is judged by rank correlation, which a cut does not
touch). Same stored scores, populations and spread as wording_report.py.

    python bench/wording_cut_bound.py bench/results/wording/wording-...-rows.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from closed_set_quality import macro_f1
from wording_report import METHODS, mean_and_spread, populations, report_main

SHOWN = ("content_free", "batch", "table")


def best_cut(log_odds: np.ndarray, gold: np.ndarray) -> float:
    """Macro-F1 of the best threshold on the positive side's log-odds (labels chosen)."""
    return max(macro_f1(list(log_odds >= t), list(gold)) for t in np.unique(log_odds))


def scored(settings: list[dict], sampled: int) -> list[dict]:
    rows = []
    for entry in settings:
        if len(entry["labels"]) != 2:
            continue
        logprobs = np.asarray(entry["logprobs"])
        table = logprobs[:sampled]
        for population, index in populations(entry, sampled).items():
            gold = np.asarray([entry["truth"][i] for i in index], dtype=bool)
            key = {k: entry[k] for k in ("model", "task", "examples", "part")}
            key["population"] = population
            for method in SHOWN:
                q = METHODS[method](logprobs[index], entry, table)
                f1 = macro_f1(list(q.argmax(axis=1) == 0), list(gold))
                rows.append({**key, "method": method, "q": f1})
            z = logprobs[index, 0] - logprobs[index, 1]
            rows.append({**key, "method": "best cut (labels)", "q": best_cut(z, gold)})
    return rows


def report(path: Path) -> str:
    doc = json.loads(path.read_text())
    rows = scored(doc["settings"], doc["rows"])
    methods = [*SHOWN, "best cut (labels)"]
    lines = [
        "# The cut's share of the spread between wordings\n",
        f"From `{path.name}` (bench/wording_cut_bound.py): two-label tasks, per-row "
        "macro-F1, all example sets and populations. Cells: mean / spread (best - worst "
        "wording within a task, example set and population, averaged). `best cut "
        "(labels)` puts each wording's cut where its own labels score best: a bound on "
        "every cut-placing rule, not a method.\n",
        "| model | part | " + " | ".join(methods) + " | half of content_free's spread |",
        "|---|---|" + "---|" * (len(methods) + 1),
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        for part in ("dev", "test"):
            cells, spreads = [], {}
            for method in methods:
                picked = [
                    r for r in rows if (r["model"], r["part"], r["method"]) == (model, part, method)
                ]
                mean, spread = mean_and_spread(picked)
                spreads[method] = spread
                cells.append(f"{mean:.3f} / {spread:.3f}")
            half = spreads["content_free"] / 2
            lines.append(f"| {model} | {part} | " + " | ".join(cells) + f" | {half:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    report_main(report, "-cut-bound", __doc__)


if __name__ == "__main__":
    main()
