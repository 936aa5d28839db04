"""check_wording: the calibration sample asked again under a trivial rewording, and how
many answers moved, reported and warned about; the query's own answers untouched."""

from __future__ import annotations

import numpy as np
import pytest
from sampled_rows import label_probs, sampled_texts

import semql
from semql.executors.lm.stats import OperatorStats
from semql.executors.lm.wording_check import reworded
from semql.grammar.types import BoolType, OptionsType

QUESTION = "Is this review positive?"
EXAMPLES = (("Great fun from start to finish.", True), ("Dull, slow and far too long.", False))
CALL = (
    "{{LLMMap('"
    + QUESTION
    + "', reviewText, examples=(('"
    + EXAMPLES[0][0]
    + "', TRUE), ('"
    + EXAMPLES[1][0]
    + "', FALSE)))}}"
)
SQL = "SELECT reviewId FROM Small WHERE " + CALL + " ORDER BY reviewId"


def test_each_rewording_keeps_the_meaning():
    q, t, ex, what = reworded(QUESTION, BoolType(), EXAMPLES)
    assert (q, t, ex) == (QUESTION, BoolType(), list(reversed(EXAMPLES)))
    assert what == "the examples are reversed"
    q, t, ex, what = reworded("Sentiment", OptionsType(("positive", "negative")), ())
    assert t == OptionsType(("negative", "positive")) and "reverse" in what
    assert reworded(QUESTION, BoolType(), ())[0] == "Is this review positive"
    assert reworded("Is it good", BoolType(), ())[0] == "Is it good?"


def test_a_warning_when_one_sampled_row_in_five_moves():
    op = OperatorStats("LMFilter x", wording_check="2 of 10 sampled rows change ...")
    op.wording_changed = 0.2
    assert "depend on the wording" in op.wording_warning()
    op.wording_changed = 0.1
    assert op.wording_warning() is None


@pytest.mark.model
def test_the_check_counts_the_rows_that_move_and_changes_no_answer(gemma_runtime):
    con = semql.connect(runtime=gemma_runtime, cache=False, calibration="batch")
    semql.load_sample(con)
    con.query("CREATE TABLE Small AS SELECT * FROM Reviews WHERE id = 'taken_3' LIMIT 8")
    plain = con.query(SQL, calibration_rows=6)["reviewId"].to_list()  # the same prior
    checked = con.query(SQL, check_wording=True, calibration_rows=6)["reviewId"].to_list()
    assert checked == plain
    (op,) = con.stats.operators
    # the same count, computed here: each wording decided with its own batch prior
    texts = sampled_texts(con, "TRUE", 6)

    def answers(examples) -> list[int]:
        probs = label_probs(gemma_runtime, QUESTION, texts, examples)
        return list(np.argmax(probs / probs.mean(axis=0), axis=1))

    moved = sum(a != b for a, b in zip(answers(EXAMPLES), answers(EXAMPLES[::-1]), strict=True))
    expected = f"{moved} of 6 sampled rows change their answer when the examples are reversed"
    assert op.wording_check == expected
    assert "wording check: " + expected in con.explain(
        SQL, analyze=True, check_wording=True, calibration_rows=6
    )
