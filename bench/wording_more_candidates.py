"""Two more label-free decision candidates for issue #33, replayed on bench/wording.py's
stored scores (dev part: where methods are chosen).

* ``domain``: domain-context calibration. Content-free calibration divides by the label
  distribution of "N/A", "" and "[MASK]": inputs with nothing in them, where a question
  about a property ("Did the reviewer enjoy the movie?") has a true answer (no), so the
  division pushes every row toward yes. Batch calibration divides by the mean of real
  rows, which assumes the labels are balanced. Domain-context calibration (Fei et al.
  2023, "Mitigating Label Biases for In-context Learning") divides by the mean label
  distribution of *random word sequences* drawn from the operator's own inputs: the
  domain's vocabulary and length, no coherent content. The recipe is the paper's, fixed
  before anything was measured: the words of the same seeded 32-row sample batch
  calibration uses (bench/wording_report.py ``_batch``), 20 sequences as long as those
  rows' mean word count, words drawn uniformly with replacement (seed 13); 20 calibration
  calls an operator. ``score`` asks the model for them.
* ``both models``: the two bundled models asked the same call, each calibrated with its
  own content-free prior (or batch prior), their distributions averaged: the second
  model as a judge in the decision. Both models' scores are already stored.

    python bench/wording_more_candidates.py score ROWS_JSON --model gemma3-270m --part dev \
        --out DC_JSON
    python bench/wording_more_candidates.py report ROWS_JSON DC_JSON
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from wording import FIELD
from wording_candidates import _call, _cell, _scored, scoring, setting_key, steps
from wording_report import _batch, _calibrated, _content_free, _off, calibration_sample, populations

from semql.executors.lm.closed_set import content_free_prior

SEQUENCES = 20
SEED = 13


def domain_texts(texts: list[str]) -> list[str]:
    """``SEQUENCES`` random word sequences from ``texts`` (their mean length in words)."""
    words = [w for t in texts for w in t.split()]
    length = max(1, round(len(words) / len(texts)))
    rng = np.random.default_rng(SEED)
    return [" ".join(rng.choice(words, length)) for _ in range(SEQUENCES)]


def score(rows_json: Path, model: str, part: str, out: Path) -> None:
    doc, text, runtime, build, done, have = scoring(rows_json, model, out)
    for entry in doc["settings"]:
        key = setting_key(entry)
        if entry["model"] != runtime.name or entry["part"] != part or key in have:
            continue
        question, out_type, shots = _call(entry)
        started = time.perf_counter()
        priors = {}
        for population, index in populations(entry, doc["rows"]).items():
            rows = [text[entry["reviewId"][index[i]]] for i in calibration_sample(len(index))]
            prompts = [build(question, out_type, [FIELD], [t], shots) for t in domain_texts(rows)]
            priors[population] = [runtime.score(p, out_type).logprobs for p in prompts]
        done.append(
            {
                **{k: entry[k] for k in ("model", "task", "kind", "wording", "part", "examples")},
                "domain": priors,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        out.write_text(json.dumps(done))
        print(*key, done[-1]["seconds"], flush=True)
    runtime.close()


def _domain(logprobs: np.ndarray, scores: list) -> np.ndarray:
    prior, _ = content_free_prior("domain", scores)
    return _calibrated(prior, logprobs)


def report(rows_json: Path, dc_json: Path) -> str:
    doc = json.loads(rows_json.read_text())
    dc = {setting_key(e): e for e in json.loads(dc_json.read_text())}
    scored = []
    for entry in doc["settings"]:
        got = dc.get(setting_key(entry))
        if got is None:
            continue
        lp = np.asarray(entry["logprobs"])
        for population, index in populations(entry, doc["rows"]).items():
            truth = [entry["truth"][i] for i in index]
            for method, q in (
                ("off", _off(lp[index], entry)),
                ("content_free", _content_free(lp[index], entry)),
                ("batch", _batch(lp[index], entry)),
                ("domain", _domain(lp[index], got["domain"][population])),
            ):
                scored += _scored(entry, population, method, truth, q)
    return _tables(rows_json, dc_json, scored, both_models(doc, "dev"))


def both_models(doc: dict, part: str) -> list[dict]:
    """Gemma and SmolLM2 on the same setting and rows, their calibrated answers averaged."""
    pairs: dict[tuple, dict] = defaultdict(dict)
    for e in doc["settings"]:
        if e["part"] == part:
            pairs[(e["task"], str(e["wording"]), e["examples"])][e["model"]] = e
    scored = []
    for pair in pairs.values():
        if len(pair) != 2:
            continue
        first, second = pair.values()
        a, b = np.asarray(first["logprobs"]), np.asarray(second["logprobs"])
        for population, index in populations(first, doc["rows"]).items():
            truth = [first["truth"][i] for i in index]
            for method, one, other in (
                ("content_free", _content_free(a[index], first), _content_free(b[index], second)),
                ("batch", _batch(a[index], first), _batch(b[index], second)),
            ):
                for name, q in (
                    (f"{first['model']}, {method}", one),
                    (f"{second['model']}, {method}", other),
                    (f"both models, {method}", (one + other) / 2),
                ):
                    for row in _scored(first, population, name, truth, q):
                        scored.append({**row, "model": "both"})
    return scored


def _tables(rows_json: Path, dc_json: Path, scored: list[dict], pair: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in scored))
    lines = [
        "# Wording candidates: domain-context calibration, both models together\n",
        f"From `{rows_json.name}` and `{dc_json.name}` (bench/wording_more_candidates.py). Cells: "
        "mean / worst / spread (best - worst wording within a task, example set and "
        "population, averaged), as bench/wording_report.py gives them.\n",
    ]
    by = defaultdict(list)
    for r in scored:
        by[(r["model"], r["part"], r["measure"], r["method"])].append(r)
    for title, keep in (
        ("All tasks and populations", lambda r: True),
        ("Mostly negative population", lambda r: r["population"] == "mostly negative"),
        ("As sampled (86% positive)", lambda r: r["population"] == "as sampled"),
        ("Balanced", lambda r: r["population"] == "balanced"),
    ):
        lines += [f"## {title}\n", "| model | part | measure | " + " | ".join(methods) + " |"]
        lines.append("|---|---|---|" + "---|" * len(methods))
        for model, part, measure in dict.fromkeys(k[:3] for k in by):
            cells = [_cell([r for r in by[(model, part, measure, m)] if keep(r)]) for m in methods]
            lines.append(f"| {model} | {part} | {measure} | " + " | ".join(cells) + " |")
        lines.append("")
    methods = list(dict.fromkeys(r["method"] for r in pair))
    lines += ["## Both bundled models together (dev part)\n"]
    lines += ["| measure | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for measure in ("rows", "count", "expected count"):
        cells = [
            _cell([r for r in pair if r["measure"] == measure and r["method"] == m])
            for m in methods
        ]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = steps(__doc__, "dc_json")
    if args.step == "score":
        score(args.rows_json, args.model, args.part, args.out)
        return
    text = report(args.rows_json, args.dc_json)
    args.dc_json.with_name(args.dc_json.name.replace(".json", ".md")).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
