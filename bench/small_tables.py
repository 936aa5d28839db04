"""Closed-set answers on small tables: does table calibration hold when the table has few rows?

Table calibration (the default) divides a row's label probabilities by the model's mean
over up to 32 sampled rows of the table. A user's first table is often a handful of rows,
and then the prior is the mean of those rows themselves: it reads them as balanced, so a
table whose rows all deserve "yes" gets about half "no". Content-free calibration judges
each row alone. This bench replays both, and their blend, on tables of 2 to 32 rows drawn
from bench/wording.py's stored label scores (every bool and options task, 6 wordings x 3
example sets, both bundled models; no LM call is made here):

* ``table``: the prior is the mean of the small table's rows (all of them: fewer than 32);
* ``content_free``: the prior of the content-free prompts;
* ``off``: no calibration;
* ``blend m``: the mean of the table's n rows and m copies of the content-free prior,
  ``(n * table + m * content_free) / (n + m)``: the content-free prior as a prior belief
  worth m rows, which the table's own rows outweigh as they grow.

Tables are drawn (seeded, without replacement) from three populations of the stored rows,
as bench/wording_report.py scores them: as sampled (about 86% positive), balanced, and
mostly negative. A draw is scored by the share of its rows answered right. The blend's m
is chosen on the *dev* wordings only (the first four of each task); the *test* wordings
(the last two) report it. Nothing here looks at the test part before m is fixed.

    python bench/small_tables.py bench/results/wording/wording-20261203-162430-rows.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from wording_report import populations

from semql.executors.lm.closed_set import PRIOR_FLOOR, Prior, content_free_prior, probabilities

SIZES = (2, 3, 4, 6, 8, 12, 16, 24, 32)
DRAWS = 60  # tables drawn per size, population and setting
BLENDS = (1, 2, 4, 8, 16, 32)
POPULATIONS = ("as sampled", "balanced", "mostly negative")


def calibrated_argmax(probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Each row's label under ``prior``, as Prior.calibrate decides it (checked below)."""
    return np.argmax(probs / np.maximum(prior, PRIOR_FLOOR), axis=1)


def accuracies(entry: dict, rng: np.random.Generator) -> dict:
    """{(population, n, method): mean share of right answers over the drawn tables}."""
    probs = np.vstack([probabilities(r) for r in entry["logprobs"]])
    gold = np.asarray(entry["truth"], dtype=bool)  # the first label is the one asked about
    cf_prior, _ = content_free_prior("content_free", entry["content_free"])
    cf = np.asarray(cf_prior.probs) if cf_prior.probs is not None else None
    out: dict = {}
    for population, index in populations(entry, 120).items():
        if population not in POPULATIONS:
            continue
        index = np.asarray(index)
        for n in SIZES:
            sums: dict[str, float] = {}
            for _ in range(DRAWS):
                rows = rng.choice(index, n, replace=False)
                p, g = probs[rows], gold[rows]
                table = p.mean(axis=0)
                priors = {"table": table, "off": np.ones_like(table)}
                if cf is not None:
                    priors["content_free"] = cf
                    for m in BLENDS:
                        priors[f"blend {m}"] = (n * table + m * cf) / (n + m)
                for method, prior in priors.items():
                    right = (calibrated_argmax(p, prior) == 0) == g
                    sums[method] = sums.get(method, 0.0) + float(right.mean())
            for method, total in sums.items():
                out[(population, n, method)] = total / DRAWS
    return out


def check_against_engine(entry: dict) -> None:
    """The vectorised decision equals the engine's Prior.calibrate on this entry's rows."""
    probs = np.vstack([probabilities(r) for r in entry["logprobs"]])
    prior = tuple(float(x) for x in probs[:5].mean(axis=0))
    engine = [int(np.argmax(Prior("table", prior).calibrate(p))) for p in probs]
    assert engine == calibrated_argmax(probs, np.asarray(prior)).tolist()


def main() -> None:
    path = Path(sys.argv[1])
    doc = json.loads(path.read_text())
    settings = [s for s in doc["settings"] if s["kind"] != "scale"]
    check_against_engine(settings[0])
    rng = np.random.default_rng(20261208)
    cells: dict = {}  # (model, part, population, n, method) -> [accuracy per setting]
    for entry in settings:
        for (population, n, method), acc in accuracies(entry, rng).items():
            key = (entry["model"], entry["part"], population, n, method)
            cells.setdefault(key, []).append(acc)
    mean = {k: float(np.mean(v)) for k, v in cells.items()}
    models = sorted({k[0] for k in mean})
    methods = ["off", "content_free", "table"] + [f"blend {m}" for m in BLENDS]

    def overall(part: str, method: str, sizes=SIZES) -> float:
        vals = [
            mean[(mo, part, po, n, method)] for mo in models for po in POPULATIONS for n in sizes
        ]
        return float(np.mean(vals))

    chosen = max((f"blend {m}" for m in BLENDS), key=lambda meth: overall("dev", meth))
    res = {
        "source": path.name,
        "settings": len(settings),
        "draws": DRAWS,
        "sizes": SIZES,
        "chosen_on_dev": chosen,
        "mean": {" | ".join(map(str, k)): v for k, v in mean.items()},
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = path.parent / f"small-tables-{stamp}"
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [
        "# Closed-set answers on small tables\n",
        f"`bench/small_tables.py` on `{path.name}`: {len(settings)} bool and options settings "
        f"(task x wording x example set x model), {DRAWS} seeded tables per size and "
        "population (as sampled, balanced, mostly negative); a cell is the mean share of "
        "rows answered right. The blend's m was chosen on the dev wordings "
        f"(mean over all sizes and populations): **{chosen}**.\n",
    ]
    for part in ("dev", "test"):
        lines += [
            f"## {part} wordings, both models, mean over populations\n",
            "| method | " + " | ".join(f"n={n}" for n in SIZES) + " | all |",
            "|---|" + "---|" * (len(SIZES) + 1),
        ]
        for method in methods:
            per_n = [
                float(
                    np.mean(
                        [mean[(mo, part, po, n, method)] for mo in models for po in POPULATIONS]
                    )
                )
                for n in SIZES
            ]
            lines.append(
                f"| {method} | "
                + " | ".join(f"{x:.3f}" for x in per_n)
                + f" | {overall(part, method):.3f} |"
            )
        lines.append("")
    lines += ["## test wordings by population and model (all sizes)\n"]
    lines += [
        "| model | population | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for mo in models:
        for po in POPULATIONS:
            vals = [
                float(np.mean([mean[(mo, "test", po, n, me)] for n in SIZES])) for me in methods
            ]
            lines.append(f"| {mo} | {po} | " + " | ".join(f"{x:.3f}" for x in vals) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
