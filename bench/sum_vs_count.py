"""A count of yes decisions against SUM of the probability of yes, on SemBench's taken_3.

taken_3 has 14 positive reviews of 120 (SemBench's labels): a skewed population, where
an expected count (``SELECT sum({{LLMMap('Is it positive?', ...)}})``) leans toward the
middle wherever the model is unsure, while a count of decisions
(``SELECT count(*) ... WHERE {{LLMMap(...)}}``) does not. The question and examples are
Q3's, as the scenario words it and as bench/sembench_reworded words it; nothing is chosen
here, the figures only say what each aggregate answers. Bundled model, cache off.

    python bench/sum_vs_count.py
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from results_file import write_results

import semql
from semql.sembench.metrics import relative_error

WORDINGS = {
    "scenario": "sembench/scenarios/movie/Q3.sql",
    "reworded": "bench/sembench_reworded/movie/Q3.sql",
}
TRUTH = 14  # positive reviews of taken_3 by SemBench's labels


def quality(estimate: float) -> float:
    """SemBench's count quality (its own scorer): 1 / (1 + relative error)."""
    return relative_error(estimate, TRUTH)["quality"]


def main() -> None:
    con = semql.connect(cache=False)
    semql.load_sample(con)
    figures: dict = {"truth": TRUTH, "cpu_threads": con.runtime.n_threads, "wordings": {}}
    lines = [
        "# taken_3: a count of decisions or SUM of the probability of yes\n",
        f"`bench/sum_vs_count.py`: Q3's call over taken_3's 120 reviews ({TRUTH} positive), "
        "bundled Gemma, table calibration (the default), cache off.\n",
        "| wording | count(*) WHERE call | quality | sum(call) | quality |",
        "|---|---|---|---|---|",
    ]
    for name, path in WORDINGS.items():
        sql = "\n".join(x for x in Path(path).read_text().splitlines() if not x.startswith("--"))
        call = re.search(r"\{\{.*\}\}", sql, re.S).group(0)
        started = time.perf_counter()
        count = con.query(sql).item()
        expected = con.query(f"SELECT sum({call}) AS e FROM Reviews WHERE id = 'taken_3'").item()
        figures["wordings"][name] = {
            "count": count,
            "sum": expected,
            "seconds": time.perf_counter() - started,
        }
        lines.append(
            f"| {name} | {count} | {quality(count):.3f} | {expected:.1f} | "
            f"{quality(expected):.3f} |"
        )
    con.close()
    write_results(Path("bench/results/wording"), "sum-vs-count", figures, lines)


if __name__ == "__main__":
    main()
