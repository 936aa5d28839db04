"""What the re-analyses of bench/closed_set_quality.py's stored label scores share: the
command line, the stored rows, a review field by reviewId, the judges' label words, and
writing the report beside the stored rows.

Used by bench/quality_holdout.py, ranking_auc.py, precision_first.py, judges.py and
judges_ranking.py (run as scripts from the repository root, so this module is importable
beside them).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from semql.executors.lm.closed_set import Prior
from semql.sample import sample_dir

# the two movies SemBench's Q2-Q9 ask about: left out where a method must not see them
QUERY_MOVIES = {"taken_3", "ant_man_and_the_wasp_quantumania"}
# the label words a zero-shot MiniLM judge compares a review with (yes-side first)
ANCHORS = {
    "pos_bool": ("positive", "negative"),
    "likes_bool": ("positive", "negative"),
    "neg_bool": ("negative", "positive"),
    "sentiment": ("positive", "negative"),
    "horror_bool": ("horror", "not horror"),
    "comedy_bool": ("comedy", "not comedy"),
}


def load(description: str) -> tuple[Path, list[dict]]:
    """Parse the command line (one quality-*-rows.json path, and --style where the file
    holds several prompt styles of a model); the path and its entries of that style."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("rows", help="a quality-*-rows.json file")
    ap.add_argument("--style", help="keep the entries of this prompt style (chat, completion)")
    args = ap.parse_args()
    path = Path(args.rows)
    return path, of_style(json.loads(path.read_text()), args.style)


def of_style(dump: list[dict], style: str | None) -> list[dict]:
    """The entries of one prompt style (a model named 'X (chat)'); all without a style,
    and entries that name no style (one style per model) in either case."""
    if style is None:
        return dump
    return [e for e in dump if "(" not in e["model"] or e["model"].endswith(f"({style})")]


def by_setting(dump: list[dict], tasks) -> dict[tuple, dict]:
    """(task, shots) -> {"gemma": entry, "smollm2": entry} for the tasks asked; a file
    with two entries of one model for a setting (two prompt styles) is an error rather
    than one of them silently kept."""
    settings: dict[tuple, dict] = {}
    for entry in dump:
        if entry["task"] in tasks:
            model = "gemma" if entry["model"].startswith("gemma") else "smollm2"
            setting = settings.setdefault((entry["task"], entry["shots"]), {})
            if model in setting:
                raise SystemExit(
                    f"{setting[model]['model']} and {entry['model']} both score "
                    f"{entry['task']} {entry['shots']}: pick one prompt style with --style"
                )
            setting[model] = entry
    return settings


def calibrated(entry: dict, idx: list[int] | None = None) -> np.ndarray:
    """The stored rows' label distributions (``idx``: those rows) calibrated by their
    content-free prior exactly as the engine decides (executors/lm/closed_set.Prior)."""
    prior = Prior("content_free", tuple(entry["content_free"]))
    probs = np.asarray(entry["probs"])
    return np.vstack([prior.calibrate(p) for p in (probs if idx is None else probs[idx])])


def review_field(name: str) -> dict[str, str]:
    """reviewId -> that column of the shipped Reviews.csv."""
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        return {r["reviewId"]: r[name] for r in csv.DictReader(f)}


def publish(path: Path, suffix: str, lines: list[str]) -> None:
    """Write the report next to ``path`` (quality-X-rows.json -> quality-X-<suffix>.md)
    and print it."""
    target = path.with_name(path.name.replace("-rows.json", f"-{suffix}.md"))
    target.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
