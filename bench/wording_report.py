"""Quality across wordings, per decision method, from bench/wording.py's stored scores.

For each model, task and example set: the mean over the *dev* wordings, and over the
*test* wordings (the last two of each task, held out) the mean, the worst and the
spread (best minus worst). Per-row decisions are scored by macro-F1 (classification) or the
Spearman correlation of the expected value with the critic's own score (the 1-5 scale);
aggregates by the count of positive-side answers against the true count, as SemBench
scores a count (1 / (1 + relative error)), for the decisions and for the expected count
(the sum of the calibrated probabilities of the positive side).

Methods decide through the engine's code (executors/lm/closed_set.py): ``off`` (the
highest whole-label probability), ``content_free`` (today's default: divided by the
mean distribution of the content-free prompts, unless that prior is unusable), and two
label-free candidates, to be chosen between on the dev part only: ``half`` (the prior's
square root: half the correction) and ``unless examples`` (the prior for zero-shot calls,
none with examples).

    python bench/wording_report.py bench/results/wording/wording-...-rows.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from closed_set_quality import macro_f1, spearman

from semql.executors.lm.closed_set import (
    DEFAULT_METHOD,
    Prior,
    content_free_prior,
    probabilities,
)

Method = Callable[[dict], np.ndarray]  # a setting -> calibrated label distributions per row


def _off(entry: dict) -> np.ndarray:
    return np.vstack([probabilities(r) for r in entry["logprobs"]])


def _content_free(entry: dict) -> np.ndarray:
    prior, _ = content_free_prior(DEFAULT_METHOD, entry["content_free"])
    return np.vstack([prior.calibrate(probabilities(r)) for r in entry["logprobs"]])


def _half(entry: dict) -> np.ndarray:
    """Candidate: a tempered prior, the content-free distribution to the power 1/2 (half
    the correction in log space), for calibration that over-corrects."""
    prior, _ = content_free_prior(DEFAULT_METHOD, entry["content_free"])
    if prior.probs is not None:
        tempered = np.sqrt(np.asarray(prior.probs))
        prior = Prior("half", tuple(float(x) for x in tempered / tempered.sum()))
    return np.vstack([prior.calibrate(probabilities(r)) for r in entry["logprobs"]])


def _unless_examples(entry: dict) -> np.ndarray:
    """Candidate: the content-free prior for zero-shot calls only; with examples, which
    show the model both answers, none."""
    return _off(entry) if entry["examples"] != "none" else _content_free(entry)


METHODS: dict[str, Method] = {
    "off": _off,
    "content_free": _content_free,
    "half": _half,
    "unless examples": _unless_examples,
}


def count_quality(estimate: float, true: float) -> float:
    return 1.0 / (1.0 + abs(estimate - true) / true) if true else float(estimate == 0)


def qualities(entry: dict, q: np.ndarray) -> dict[str, float]:
    """The setting's per-row and aggregate quality under one method's distributions."""
    if entry["kind"] == "scale":
        keep = [i for i, t in enumerate(entry["truth"]) if t is not None]
        ev = q[keep] @ np.arange(1, q.shape[1] + 1)
        return {"rows": spearman(list(ev), [entry["truth"][i] for i in keep])}
    # the label asked about: yes for yes/no, the first (positive-side) label for options
    gold = np.asarray(entry["truth"], dtype=bool)
    pred = q.argmax(axis=1) == 0
    return {
        "rows": macro_f1(list(pred), list(gold)),
        "count": count_quality(float(pred.sum()), float(gold.sum())),
        "expected count": count_quality(float(q[:, 0].sum()), float(gold.sum())),
    }


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)
    settings = json.loads(path.read_text())["settings"]
    full = 6 * 3  # wordings x example sets of a task
    groups = Counter((e["model"], e["task"]) for e in settings)
    partial = sorted(f"{m}: {t}" for (m, t), n in groups.items() if n < full)
    settings = [e for e in settings if groups[(e["model"], e["task"])] == full]
    scored = []
    for entry in settings:
        for method, fn in METHODS.items():
            for measure, value in qualities(entry, fn(entry)).items():
                scored.append({**_key(entry), "method": method, "measure": measure, "q": value})
    lines = [
        "# Quality across wordings, by decision method\n",
        f"From `{path.name}`. Dev: the first four wordings of each task; test: the last two "
        "(held out). Cells: test mean / worst / spread (best - worst), then the dev mean.\n",
    ]
    if partial:
        lines.append(
            "Left out, not all of their settings were measured (a run stopped early): "
            + "; ".join(partial)
            + ". A model's *all tasks* rows cover its complete tasks only.\n"
        )
    for model in dict.fromkeys(s["model"] for s in scored):
        lines += [f"## {model}\n", _header()]
        for task in dict.fromkeys(s["task"] for s in scored):
            for examples in ("none", "easy", "borderline"):
                for measure in ("rows", "count", "expected count"):
                    cells = _cells(scored, model, task, examples, measure)
                    if cells:
                        lines.append(f"| {task} | {examples} | {measure} | " + cells + " |")
        for measure in ("rows", "count", "expected count"):
            cells = _cells(scored, model, None, None, measure)
            if cells:
                lines.append(f"| **all tasks** | all | {measure} | " + cells + " |")
        lines.append("")
    target = path.with_name(path.name.replace("-rows.json", ".md"))
    target.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _key(entry: dict) -> dict:
    keys = ("model", "task", "wording", "part", "examples")
    return {k: entry[k] for k in keys}


def _header() -> str:
    names = " | ".join(METHODS)
    return f"| task | examples | measure | {names} |\n|---|---|---|" + "---|" * len(METHODS)


def _cells(scored, model, task, examples, measure) -> str:
    out = []
    for method in METHODS:
        rows = [
            s
            for s in scored
            if s["model"] == model
            and s["method"] == method
            and s["measure"] == measure
            and (task is None or s["task"] == task)
            and (examples is None or s["examples"] == examples)
        ]
        test = np.asarray([s["q"] for s in rows if s["part"] == "test"])
        dev = np.asarray([s["q"] for s in rows if s["part"] == "dev"])
        if not len(test):
            return ""
        spread = test.max() - test.min()
        out.append(f"{test.mean():.3f} / {test.min():.3f} / {spread:.3f}, dev {dev.mean():.3f}")
    return " | ".join(out)


if __name__ == "__main__":
    main()
