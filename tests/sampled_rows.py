"""What the batch-calibration tests compute by hand, independently of the engine: the
rows the sample rule names and their label distributions on the runtime itself."""

from __future__ import annotations

import numpy as np

from semql.executors.lm import closed_set
from semql.grammar.types import BoolType
from semql.planner.physical.prompt_format import PromptBuilder


def sampled_texts(con, where: str, k: int) -> list[str]:
    """Distinct review texts of ``Small`` under ``where``, in hash order, the first k."""
    return [
        r[0]
        for r in con.duckdb.sql(
            f"SELECT DISTINCT reviewText AS __c0 FROM Small WHERE ({where}) "
            f"AND __c0 IS NOT NULL ORDER BY hash(__c0), __c0 LIMIT {k}"
        ).fetchall()
    ]


def label_probs(runtime, question: str, texts: list[str], examples=()) -> np.ndarray:
    """Each text's yes/no distribution, asked as a row of ``question`` with ``examples``."""
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    return np.array(
        [
            closed_set.probabilities(
                runtime.score(
                    builder.build(question, BoolType(), ["reviewText"], [t], examples),
                    BoolType(),
                ).logprobs
            )
            for t in texts
        ]
    )
