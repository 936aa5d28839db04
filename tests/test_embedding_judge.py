"""The embedding judge of precision-first LIMIT (executors/lm/embedding_judge.py): its
anchors come from the query alone, its margin favours rows near their own answer's
texts, and the combination is a mean of standardised scores."""

from __future__ import annotations

import numpy as np
import pytest

from semql.executors.lm import embedding_judge as judge
from semql.grammar.types import BoolType, IntType, OptionsType

# a toy embedding with known geometry: each text is a unit vector named by its first word
AXES = {"good": (1.0, 0.0, 0.0), "bad": (0.0, 1.0, 0.0), "plot": (0.0, 0.0, 1.0)}


def embed(texts):
    rows = []
    for text in texts:
        v = np.zeros(3)
        for word in text.split():
            v += AXES.get(word, (0.0, 0.0, 0.0))
        rows.append(v / (np.linalg.norm(v) or 1.0))
    return np.vstack(rows)


def test_anchors_come_from_options_or_examples_of_both_answers():
    assert judge.anchors(OptionsType(("positive", "negative")), []) == {
        "positive": ["positive"],
        "negative": ["negative"],
    }
    shots = [("good film", True), ("bad film", False), ("good fun", True)]
    assert judge.anchors(BoolType(), shots) == {
        True: ["good film", "good fun"],
        False: ["bad film"],
    }
    assert judge.anchors(BoolType(), []) is None  # zero-shot yes/no: the LM alone
    assert judge.anchors(BoolType(), [("good film", True)]) is None  # one answer only
    assert judge.anchors(OptionsType((1, 2, 3), expected=True), []) is None  # a number
    assert judge.anchors(IntType(), []) is None
    two_fields = judge.anchors(BoolType(), [("good", "x", True), ("bad", None, False)])
    assert two_fields == {True: ["good\nx"], False: ["bad\n"]}


def test_margin_is_closeness_to_the_rows_own_answer():
    anchors = {True: ["good"], False: ["bad"]}
    texts = ["good good", "bad", "good bad", "plot", "good"]
    answers = [True, True, True, True, None]
    m = judge.margins(embed, texts, answers, anchors)
    assert m[0] == pytest.approx(1.0) and m[1] == pytest.approx(-1.0)
    assert m[2] == pytest.approx(0.0) and m[3] == pytest.approx(0.0)
    assert np.isnan(m[4])  # no anchor for this answer
    flipped = judge.margins(embed, texts[:2], [False, False], anchors)
    assert flipped.tolist() == pytest.approx([-1.0, 1.0])


def test_combined_is_the_mean_of_standardised_scores():
    conf = [0.9, 0.6, 0.7, None]
    judged = np.array([0.0, 1.0, np.nan, 0.5])
    out = judge.combined(conf, judged)
    lm = np.log(np.array([0.9, 0.6, 0.7]) / (1 - np.array([0.9, 0.6, 0.7])))
    z_lm = (lm - lm.mean()) / lm.std()
    z_m = (np.array([0.0, 1.0, 0.5]) - 0.5) / np.std([0.0, 1.0, 0.5])
    assert out[0] == pytest.approx((z_lm[0] + z_m[0]) / 2)
    assert out[1] == pytest.approx((z_lm[1] + z_m[1]) / 2)
    assert out[2] == pytest.approx(z_lm[2])  # the judge could not score it: the LM's
    assert np.isnan(out[3])  # decoded, not scored (a server's fallback): ranks last
    # a row the LM is less sure of can rank first when the judge is much surer of it
    assert out[1] > out[0]
