"""Quality across wordings, per decision method, from bench/wording.py's stored scores.

Each setting (model, task, wording, example set) is scored on three *populations* of the
stored rows, since a method that leans toward one label looks good on data where that
label is common: the seeded sample as drawn (about 86% positive reviews), a balanced one
(every negative review and as many positives) and a mostly negative one (every negative
and a quarter as many positives), as a movie most critics panned would be.

Per-row decisions are scored by macro-F1 (classification) or the Spearman correlation
of the expected value with the critic's own score (the 1-5 scale); aggregates by the
count of positive-side answers against the true count, as SemBench scores a count
(1 / (1 + relative error)), for the decisions and for the expected count (the sum of the
calibrated probabilities of the positive side).

For the *dev* wordings (the first four of each task) and the *test* ones (the last two,
held out: nothing is chosen on them) a cell gives the mean, the worst setting, and the
spread: best minus worst wording within one task, example set and population, averaged
over those groups (what changes when only the question is reworded).

Methods decide through the engine's code (executors/lm/closed_set.py): ``off`` (the
highest whole-label probability), ``content_free`` (the prior of content-free prompts),
``half`` (its square root: half the correction), ``unless examples`` (the content-free
prior for zero-shot calls only), ``batch`` (the mean distribution of 32 rows of the
population, seeded; the engine draws its 32 in hash order from the rows of the WHERE's
relational conjuncts) and ``table`` (the same of 32 rows of the *table* the population
was selected from, the sample as drawn: the engine samples the FROM without the WHERE's
one-table filters, so a panned movie's reviews are judged against all the reviews).

    python bench/wording_report.py bench/results/wording/wording-...-rows.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from closed_set_quality import macro_f1, spearman

from semql.executors.lm.closed_set import (
    Prior,
    content_free_prior,
    probabilities,
    sample_prior,
)
from semql.planner.options import PlanOptions

BATCH_ROWS = PlanOptions().calibration_rows
MEASURES = ("rows", "count", "expected count")
# (logprobs of the population's rows, the setting, logprobs of the table's rows)
# -> calibrated distributions per row
Method = Callable[[np.ndarray, dict, np.ndarray], np.ndarray]


def _calibrated(prior: Prior, logprobs: np.ndarray) -> np.ndarray:
    return np.vstack([prior.calibrate(probabilities(r)) for r in logprobs])


def _off(logprobs: np.ndarray, entry: dict, table: np.ndarray) -> np.ndarray:
    return _calibrated(Prior("off", None), logprobs)


def _content_free(logprobs: np.ndarray, entry: dict, table: np.ndarray) -> np.ndarray:
    return _calibrated(content_free_prior("content_free", entry["content_free"])[0], logprobs)


def _half(logprobs: np.ndarray, entry: dict, table: np.ndarray) -> np.ndarray:
    prior, _ = content_free_prior("content_free", entry["content_free"])
    if prior.probs is not None:
        tempered = np.sqrt(np.asarray(prior.probs))
        prior = Prior("half", tuple(float(x) for x in tempered / tempered.sum()))
    return _calibrated(prior, logprobs)


def _unless_examples(logprobs: np.ndarray, entry: dict, table: np.ndarray) -> np.ndarray:
    if entry["examples"] != "none":
        return _off(logprobs, entry, table)
    return _content_free(logprobs, entry, table)


def calibration_sample(n: int) -> np.ndarray:
    """Positions of the seeded ``BATCH_ROWS``-row sample of a population of ``n`` rows (the
    engine draws its 32 in hash order; here one seed serves every method that samples)."""
    return np.random.default_rng(7).choice(n, min(BATCH_ROWS, n), replace=False)


def _batch(logprobs: np.ndarray, entry: dict, table: np.ndarray) -> np.ndarray:
    return _sampled("batch", logprobs, logprobs)


def _table(logprobs: np.ndarray, entry: dict, table: np.ndarray) -> np.ndarray:
    return _sampled("table", table, logprobs)


def _sampled(method: str, sample_from: np.ndarray, logprobs: np.ndarray) -> np.ndarray:
    """``logprobs`` calibrated by the mean of a seeded sample of ``sample_from``'s rows."""
    pick = calibration_sample(len(sample_from))
    prior, _ = sample_prior(method, sample_from[pick].tolist(), len(pick))
    return _calibrated(prior, logprobs)


METHODS: dict[str, Method] = {
    "off": _off,
    "content_free": _content_free,
    "half": _half,
    "unless examples": _unless_examples,
    "batch": _batch,
    "table": _table,
}


def populations(entry: dict, sampled: int) -> dict[str, list[int]]:
    """Row indices of each population: the sample as drawn (the first ``sampled`` rows),
    balanced, mostly negative (by the review's own sentiment, seeded)."""
    if entry["kind"] == "scale":
        return {"as sampled": list(range(sampled))}
    negated = entry["kind"] == "bool-negated"
    positive = [i for i, t in enumerate(entry["truth"]) if t != negated]
    negative = [i for i, t in enumerate(entry["truth"]) if t == negated]
    rng = np.random.default_rng(11)
    return {
        "as sampled": list(range(sampled)),
        "balanced": sorted(negative + list(rng.choice(positive, len(negative), replace=False))),
        "mostly negative": sorted(
            negative + list(rng.choice(positive, len(negative) // 4, replace=False))
        ),
    }


def count_quality(estimate: float, true: float) -> float:
    return 1.0 / (1.0 + abs(estimate - true) / true) if true else float(estimate == 0)


def qualities(kind: str, truth: list, q: np.ndarray) -> dict[str, float]:
    """Per-row and aggregate quality of one population's calibrated distributions."""
    if kind == "scale":
        keep = [i for i, t in enumerate(truth) if t is not None]
        ev = q[keep] @ np.arange(1, q.shape[1] + 1)
        return {"rows": spearman(list(ev), [truth[i] for i in keep])}
    # the label asked about: yes for yes/no, the first (positive-side) label for options
    gold = np.asarray(truth, dtype=bool)
    pred = q.argmax(axis=1) == 0
    return {
        "rows": macro_f1(list(pred), list(gold)),
        "count": count_quality(float(pred.sum()), float(gold.sum())),
        "expected count": count_quality(float(q[:, 0].sum()), float(gold.sum())),
    }


def score_all(settings: list[dict], sampled: int) -> list[dict]:
    scored = []
    for entry in settings:
        logprobs = np.asarray(entry["logprobs"])
        table = logprobs[:sampled]
        for population, index in populations(entry, sampled).items():
            truth = [entry["truth"][i] for i in index]
            for method, fn in METHODS.items():
                q = fn(logprobs[index], entry, table)
                for measure, value in qualities(entry["kind"], truth, q).items():
                    scored.append(
                        {
                            **{k: entry[k] for k in ("model", "task", "kind", "wording", "part")},
                            "examples": entry["examples"],
                            "population": population,
                            "method": method,
                            "measure": measure,
                            "q": value,
                        }
                    )
    return scored


def mean_and_spread(rows: list[dict]) -> tuple[float, float]:
    """The mean quality ``q`` of ``rows`` and the spread between wordings: best minus worst
    within one task, example set and population, averaged over those groups."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["examples"], r["population"])].append(r["q"])
    spread = float(np.mean([max(g) - min(g) for g in groups.values()]))
    return float(np.mean([r["q"] for r in rows])), spread


def cell(rows: list[dict], part: str) -> tuple[float, float, float] | None:
    """(mean, worst, mean spread over wordings) of one part's scored settings."""
    rows = [r for r in rows if r["part"] == part]
    if not rows:
        return None
    mean, spread = mean_and_spread(rows)
    return mean, float(min(r["q"] for r in rows)), spread


def _text(rows: list[dict]) -> str:
    test, dev = cell(rows, "test"), cell(rows, "dev")
    if test is None or dev is None:
        return "-"
    return f"{test[0]:.3f} / {test[1]:.3f} / {test[2]:.3f}, dev {dev[0]:.3f} / {dev[2]:.3f}"


def report(path: Path) -> str:
    doc = json.loads(path.read_text())
    settings = doc["settings"]
    full = {(e["model"], e["task"]) for e in settings}
    complete = {k for k in full if sum((e["model"], e["task"]) == k for e in settings) == 18}
    left_out = sorted(f"{m}: {t}" for m, t in full - complete)
    settings = [e for e in settings if (e["model"], e["task"]) in complete]
    scored = score_all(settings, doc["rows"])
    by = defaultdict(list)
    for s in scored:
        by[(s["model"], s["method"], s["measure"])].append(s)
    names = " | ".join(METHODS)
    header = f"| measure | {names} |\n|---|" + "---|" * len(METHODS)
    lines = [
        "# Quality across wordings, by decision method\n",
        f"From `{path.name}`: {doc['rows']} seeded reviews plus "
        f"{doc.get('negatives_added', 0)} more negative ones; populations as sampled, "
        "balanced and mostly negative (bench/wording_report.py). Cells: **test** mean / "
        "worst / spread (best - worst wording within a task, example set and population, "
        "averaged), then the dev mean / spread. Nothing is chosen on the test part.\n",
    ]
    if left_out:
        lines.append("Left out, not all their settings were measured: " + "; ".join(left_out))
    for model in dict.fromkeys(s["model"] for s in scored):
        lines += [f"\n## {model}: all tasks\n", header]
        for measure in MEASURES:
            cells = [_text(by[(model, m, measure)]) for m in METHODS]
            lines.append(f"| {measure} | " + " | ".join(cells) + " |")
        lines += [f"\n### {model}: by population (all tasks)\n"]
        lines.append(f"| population | measure | {names} |\n|---|---|" + "---|" * len(METHODS))
        for population in ("as sampled", "balanced", "mostly negative"):
            for measure in MEASURES:
                cells = [
                    _text([s for s in by[(model, m, measure)] if s["population"] == population])
                    for m in METHODS
                ]
                lines.append(f"| {population} | {measure} | " + " | ".join(cells) + " |")
        lines += [f"\n### {model}: by task and example set (all populations)\n"]
        lines.append(
            f"| task | examples | measure | {names} |\n|---|---|---|" + "---|" * len(METHODS)
        )
        for task in dict.fromkeys(s["task"] for s in scored if s["model"] == model):
            for examples in ("none", "easy", "borderline"):
                for measure in MEASURES:
                    cells = []
                    for m in METHODS:
                        rows = [
                            s
                            for s in by[(model, m, measure)]
                            if s["task"] == task and s["examples"] == examples
                        ]
                        cells.append(_text(rows) if rows else "")
                    if any(cells):
                        lines.append(
                            f"| {task} | {examples} | {measure} | " + " | ".join(cells) + " |"
                        )
    lines += ["", _yes_no_sums(scored), "", _ranking(settings), "", _costs(doc)]
    return "\n".join(lines) + "\n"


def _yes_no_sums(scored: list[dict]) -> str:
    """The yes/no tasks' count of decisions (``SELECT count(*) ... WHERE call``) against
    their expected count (``SELECT sum(call)``, the call's probability of yes summed), over
    all populations and per population: the sum moves less with the wording, but where
    the model is unsure it leans toward the middle, which a skewed population shows."""
    parts = [
        "## Yes/no calls: a count of decisions or SUM of the probability of yes\n",
        "Both yes/no tasks, all example sets. Cells: test mean / worst / spread, then the "
        "dev mean / spread.\n",
        "| model | population | method | count of decisions | expected count (SUM of the call) |",
        "|---|---|---|---|---|",
    ]
    yes_no = [s for s in scored if s["kind"] in ("bool", "bool-negated")]
    for model in dict.fromkeys(s["model"] for s in yes_no):
        for population in ("all", "as sampled", "balanced", "mostly negative"):
            for method in ("content_free", "table"):
                cells = [
                    _text(
                        [
                            s
                            for s in yes_no
                            if (s["model"], s["method"], s["measure"]) == (model, method, measure)
                            and population in ("all", s["population"])
                        ]
                    )
                    for measure in ("count", "expected count")
                ]
                parts.append(f"| {model} | {population} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(parts)


def _ranking(settings: list[dict]) -> str:
    """How well each two-label setting *ranks* the rows (ROC AUC of the positive side's
    log-odds over all stored rows): calibration moves the cut, never this order, so a
    wording ranked below 0.5 is one the model reads backwards."""
    from sklearn.metrics import roc_auc_score

    aucs = defaultdict(list)
    for e in settings:
        if len(e["labels"]) == 2:
            z = np.asarray(e["logprobs"])
            aucs[(e["model"], e["task"], e["examples"])].append(
                roc_auc_score(e["truth"], z[:, 0] - z[:, 1])
            )
    parts = [
        "## Ranking: ROC AUC over the six wordings (min - max)\n",
        "| model | task | none | easy | borderline |",
        "|---|---|---|---|---|",
    ]
    for model, task in dict.fromkeys((m, t) for m, t, _ in aucs):
        cells = [
            f"{min(a):.2f} - {max(a):.2f}"
            for a in (aucs[(model, task, x)] for x in ("none", "easy", "borderline"))
        ]
        parts.append(f"| {model} | {task} | " + " | ".join(cells) + " |")
    return "\n".join(parts)


def _costs(doc: dict) -> str:
    """What each method costs per LM operator, in calls and in seconds on this run."""
    per_call = defaultdict(list)
    for e in doc["settings"]:
        per_call[e["model"]].append(e["seconds"] / doc["rows"])
    parts = [
        "## Cost per LM operator\n",
        "| model | s per call | content_free | batch | table |",
        "|---|---|---|---|---|",
    ]
    for model, secs in per_call.items():
        s = float(np.mean(secs))
        parts.append(
            f"| {model} | {s:.2f} | 3 calls, {3 * s:.1f} s | at most {BATCH_ROWS} calls, "
            f"{BATCH_ROWS * s:.1f} s (none where the operator asks those rows anyway) | "
            f"at most {BATCH_ROWS} calls, {BATCH_ROWS * s:.1f} s (the sampled rows the "
            "WHERE keeps cost nothing) |"
        )
    parts.append(
        "\n`off`, `half` and `unless examples` cost what content_free costs or nothing. "
        "Seconds are the run's own (rows of the first sample, prompts as queries build them)."
    )
    return "\n".join(parts)


def report_main(make: Callable[[Path], str], suffix: str, usage: str) -> None:
    """Report on the rows file named on the command line: ``make(path)`` written beside it
    as ``NAME{suffix}.md``, and printed."""
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(usage)
    if not path.name.endswith("-rows.json"):
        sys.exit(f"{path}: expected a bench/wording.py rows file (NAME-rows.json)")
    text = make(path)
    path.with_name(path.name.removesuffix("-rows.json") + suffix + ".md").write_text(text)
    print(text)


def main() -> None:
    report_main(report, "", __doc__)


if __name__ == "__main__":
    main()
