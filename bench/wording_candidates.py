"""Two more label-free decision methods for issue #33, replayed on bench/wording.py's
stored scores (dev part: where methods are chosen).

* ``order ensemble``: a call with examples asked twice, its examples as written and
  reversed, each wording calibrated with its own content-free prior, the two calibrated
  distributions averaged (twice the LM calls). ``score`` asks the model for the reversed
  wordings of the stored settings (the same rows, prompts as queries build them).
* ``judges``: the bundled MiniLM in the *decision*, not only in precision-first's ranking:
  the LM's calibrated log-odds plus the embedder's margin (cosine similarity to the
  texts of the first answer minus the second's; anchors from the query alone, as
  executors/lm/embedding_judge.py takes them), each divided by its standard deviation
  over a seeded sample of 32 rows, so neither moves the cut; ``minilm`` is the margin
  alone. A zero-shot yes/no call has no anchors and keeps the LM's answer.

    python bench/wording_candidates.py score ROWS_JSON --model gemma3-270m --out REV_JSON
    python bench/wording_candidates.py report ROWS_JSON REV_JSON
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from wording import EXAMPLE_SETS, FIELD, TASKS, example_answer, out_type_of
from wording_report import _batch, _content_free, calibration_sample, populations, qualities

from semql.executors.lm.closed_set import CONTENT_FREE
from semql.executors.lm.embedding_judge import anchors, margins
from semql.grammar.types import BoolType
from semql.sample import sample_dir


def _call(entry: dict, reverse: bool = False):
    """The setting's (question, output type, examples) as queries pass them."""
    kind, wordings = TASKS[entry["task"]]
    question, labels = wordings[int(entry["wording"])]
    shots = [(t, example_answer(kind, labels, p)) for t, p in EXAMPLE_SETS[entry["examples"]]]
    return question, out_type_of(kind, labels), shots[::-1] if reverse else shots


def review_texts() -> dict[str, str]:
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        return {r["reviewId"]: r["reviewText"] for r in csv.DictReader(f)}


def setting_key(entry: dict) -> tuple:
    """What names a stored setting across the rows file and the extra scores' files."""
    return entry["model"], entry["task"], str(entry["wording"]), entry["examples"]


def scoring(rows_json: Path, model: str, out: Path) -> tuple:
    """What a ``score`` step works with: the stored rows, the review texts, the model as
    the stored runs loaded it, its prompt builder, the scores already written to ``out``
    and their settings' keys (a run cut short goes on where it stopped)."""
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import resolve_model_path
    from semql.planner.physical.prompt_format import PromptBuilder

    runtime = LlamaRuntime(resolve_model_path(model), batch_rows=1)  # as the stored runs
    build = PromptBuilder(runtime.style, runtime.format_chat).build
    done = json.loads(out.read_text()) if out.exists() else []
    have = {setting_key(e) for e in done}
    return json.loads(rows_json.read_text()), review_texts(), runtime, build, done, have


def score(rows_json: Path, model: str, part: str, out: Path) -> None:
    doc, text, runtime, build, done, have = scoring(rows_json, model, out)
    for entry in doc["settings"]:
        key = setting_key(entry)
        if entry["model"] != runtime.name or entry["examples"] == "none" or key in have:
            continue
        if entry["part"] != part:
            continue
        question, out_type, shots = _call(entry, reverse=True)
        prompts = [build(question, out_type, [FIELD], [text[r]], shots) for r in entry["reviewId"]]
        free = [build(question, out_type, [FIELD], [v], shots) for v in CONTENT_FREE]
        started = time.perf_counter()
        scores = [np.round(runtime.score(p, out_type).logprobs, 5).tolist() for p in prompts]
        done.append(
            {
                **{k: entry[k] for k in ("model", "task", "kind", "wording", "part", "examples")},
                "logprobs": scores,
                "content_free": [runtime.score(p, out_type).logprobs for p in free],
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        out.write_text(json.dumps(done))
        print(*key, done[-1]["seconds"], flush=True)
    runtime.close()


class Margins:
    """MiniLM's margin of every row for the first answer against the second."""

    def __init__(self):
        from semql.executors.proxy.embeddings import MiniLMEmbedder

        self.model, self.known, self.text = MiniLMEmbedder(), {}, review_texts()

    def embed(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.known]
        if new:
            self.known.update(zip(new, self.model.embed(new), strict=True))
        return np.vstack([self.known[t] for t in texts])

    def of(self, entry: dict, ids: list[str]) -> np.ndarray | None:
        _, out_type, shots = _call(entry)
        texts = anchors(out_type, shots)
        if texts is None:
            return None
        if len(texts) != 2:
            return None
        first = True if isinstance(out_type, BoolType) else out_type.values[0]
        rows = [self.text[i] for i in ids]
        return margins(self.embed, rows, [first] * len(rows), texts)  # first minus second


def _log_odds(q: np.ndarray) -> np.ndarray:
    q = np.clip(q, 1e-12, 1.0)
    return np.log(q[:, 0]) - np.log(q[:, 1])


def _scored(entry, population, method, truth, q) -> list[dict]:
    return [
        {
            **{k: entry[k] for k in ("model", "task", "wording", "part", "examples")},
            "population": population,
            "method": method,
            "measure": measure,
            "q": value,
        }
        for measure, value in qualities(entry["kind"], truth, q).items()
    ]


def report(rows_json: Path, rev_json: Path) -> str:
    doc = json.loads(rows_json.read_text())
    rev = {setting_key(e): e for e in json.loads(rev_json.read_text())}
    margins = Margins()
    ensemble, judged = [], []
    for entry in doc["settings"]:
        if entry["kind"] == "scale" and entry["examples"] == "none":
            continue
        lp = np.asarray(entry["logprobs"])
        other = rev.get(setting_key(entry))
        for population, index in populations(entry, doc["rows"]).items():
            truth = [entry["truth"][i] for i in index]
            written = _content_free(lp[index], entry)
            if other is not None:
                reversed_ = _content_free(np.asarray(other["logprobs"])[index], other)
                both = _batch(np.asarray(other["logprobs"])[index], other)
                for method, q in (
                    ("content_free", written),
                    ("reversed", reversed_),
                    ("order ensemble", (written + reversed_) / 2),
                    ("batch", _batch(lp[index], entry)),
                    ("order ensemble, batch", (_batch(lp[index], entry) + both) / 2),
                ):
                    ensemble += _scored(entry, population, method, truth, q)
            if entry["kind"] == "scale":
                continue
            m = margins.of(entry, [entry["reviewId"][i] for i in index])
            z = _log_odds(written)
            pick = calibration_sample(len(index))
            combined = z if m is None else z / (z[pick].std() or 1) + m / (m[pick].std() or 1)
            alone = z if m is None else m
            for method, d in (("content_free", z), ("minilm", alone), ("judges", combined)):
                q = np.stack([d > 0, d <= 0], axis=1).astype(float)
                scored = _scored(entry, population, method, truth, q)
                judged += [r for r in scored if r["measure"] != "expected count"]  # decisions
    return _tables(doc, rows_json, rev_json, ensemble, judged)


def _tables(doc, rows_json, rev_json, ensemble, judged) -> str:
    lines = [
        "# Wording candidates: an order ensemble and MiniLM in the decision\n",
        f"From `{rows_json.name}` and `{rev_json.name}` (bench/wording_candidates.py). Cells: "
        "mean / worst / spread (best - worst wording within a task, example set and "
        "population, averaged), as bench/wording_report.py gives them; populations as "
        "sampled, balanced, mostly negative. Methods are chosen on the dev part only.\n",
    ]
    for title, rows in (
        ("Order ensemble (settings with examples that have reversed scores)", ensemble),
        ("MiniLM in the decision (two-label tasks, every setting)", judged),
    ):
        methods = list(dict.fromkeys(r["method"] for r in rows))
        lines += [f"## {title}\n", "| model | part | measure | " + " | ".join(methods) + " |"]
        lines.append("|---|---|---|" + "---|" * len(methods))
        by = defaultdict(list)
        for r in rows:
            by[(r["model"], r["measure"], r["method"])].append(r)
        for model in dict.fromkeys(r["model"] for r in rows):
            for measure in ("rows", "count", "expected count"):
                for part in ("dev", "test"):
                    cells = []
                    for method in methods:
                        got = [r for r in by[(model, measure, method)] if r["part"] == part]
                        cells.append(_cell(got))
                    if any(c != "-" for c in cells):
                        row = f"| {model} | {part} | {measure} | " + " | ".join(cells) + " |"
                        lines.append(row)
        lines.append("")
    return "\n".join(lines)


def _cell(rows: list[dict]) -> str:
    """mean / worst / spread, as bench/wording_report.py's cells."""
    if not rows:
        return "-"
    groups = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["examples"], r["population"])].append(r["q"])
    values = [r["q"] for r in rows]
    spread = np.mean([max(g) - min(g) for g in groups.values()])
    return f"{np.mean(values):.3f} / {min(values):.3f} / {spread:.3f}"


def steps(doc: str, scores: str) -> argparse.Namespace:
    """The command line of a candidates script: ``score`` (extra model scores for the
    stored settings, written to ``--out``) or ``report`` (the stored rows and ``scores``)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    s = sub.add_parser("score")
    s.add_argument("rows_json", type=Path)
    s.add_argument("--model", default="gemma3-270m")
    s.add_argument("--part", default="dev", choices=("dev", "test"))
    s.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("rows_json", type=Path)
    r.add_argument(scores, type=Path)
    return ap.parse_args()


def main() -> None:
    args = steps(__doc__, "rev_json")
    if args.step == "score":
        score(args.rows_json, args.model, args.part, args.out)
        return
    text = report(args.rows_json, args.rev_json)
    target = args.rev_json.with_name(args.rev_json.name.replace("-rev.json", "-candidates.md"))
    target.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
