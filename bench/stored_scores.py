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
    """Parse the command line (one quality-*-rows.json path); the path and its entries."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("rows", help="a quality-*-rows.json file")
    path = Path(ap.parse_args().rows)
    return path, json.loads(path.read_text())


def by_setting(dump: list[dict], tasks) -> dict[tuple, dict]:
    """(task, shots) -> {"gemma": entry, "smollm2": entry} for the tasks asked."""
    settings: dict[tuple, dict] = {}
    for entry in dump:
        if entry["task"] in tasks:
            model = "gemma" if entry["model"].startswith("gemma") else "smollm2"
            settings.setdefault((entry["task"], entry["shots"]), {})[model] = entry
    return settings


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
