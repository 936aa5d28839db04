"""One bench run's results: a JSON file of the figures and a Markdown table beside it.

Both are named ``{name}-{stamp}`` in the results folder, so a figure quoted in the docs
names the file it came from, and a rerun never overwrites an earlier one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def write_results(out: Path, name: str, figures: dict, lines: list[str]) -> str:
    """Write ``figures`` as JSON and ``lines`` as Markdown, print the Markdown, and return
    the stamp the two files share."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{name}-{stamp}.json").write_text(json.dumps(figures, indent=1))
    (out / f"{name}-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return stamp
