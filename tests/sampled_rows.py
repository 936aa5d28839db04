"""What the batch- and table-calibration tests compute by hand, independently of the engine:
rows the sample rule names and their label distributions on the runtime itself."""

from __future__ import annotations

import numpy as np

import semql
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


# The table prior's sample in model tests not about calibration: with the cache off each
# closed-set query with a filter pays its sample again, and 8 rows keep the suite's time
# (test_table_calibration.py and test_batch_calibration.py test their own sizes).
SAMPLE_ROWS = 8

TWO_MOVIES = "('taken_3', 'ant_man_and_the_wasp_quantumania')"


def two_movies(runtime, calibration: str):
    """A fixture body: a connection deciding by ``calibration`` with the table ``Small``
    (every tenth review of SemBench's two query movies); the session's runtime stays open."""
    con = semql.connect(runtime=runtime, cache=False, calibration=calibration)
    semql.load_sample(con)
    con.query(
        "CREATE TABLE Small AS SELECT * FROM Reviews "
        f"WHERE id IN {TWO_MOVIES} AND reviewId % 10 = 0"
    )
    yield con
    con._runtime = None
    con.close()


def prior_of(con) -> str:
    """The calibration line of the last query's one calibrated operator."""
    (op,) = [o for o in con.stats.operators if o.calibration]
    return op.calibration
