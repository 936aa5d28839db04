"""Answers a server could not score (its greedy fallback: one label at log-probability 0,
the others at -inf) carry no confidence: they rank last under precision-first, and a
label prior made of them, or one with a label at zero, is reported and not applied."""

from __future__ import annotations

import math

import numpy as np

from semql.executors.lm import closed_set, embedding_judge
from semql.executors.lm.stats import OperatorStats, QueryStats
from semql.grammar.types import BoolType

INF = float("-inf")


def test_the_greedy_fallback_is_told_from_a_scored_row():
    assert closed_set.unscored([0.0, INF])
    assert closed_set.unscored([INF, 0.0, INF])
    assert not closed_set.unscored([-0.1, -2.4])
    assert not closed_set.unscored([-0.1, INF, -3.0])  # a label the server did not list


def test_an_unscored_row_has_no_confidence_and_ranks_last():
    prior = closed_set.Prior("content_free", (0.5, 0.5))
    scored = closed_set.row_confidence(BoolType(), [-0.2, -1.7], prior)
    assert 0.5 < scored < 1
    assert closed_set.row_confidence(BoolType(), [0.0, INF], prior) is None
    # with the second judge, a row the LM could not score still ranks last
    keys = embedding_judge.combined([0.9, None, 0.6], np.array([0.1, 5.0, 0.2]))
    assert math.isnan(keys[1]) and not math.isnan(keys[0]) and not math.isnan(keys[2])


def test_a_prior_of_unscored_or_zero_labels_is_not_applied():
    good = [[-0.3, -1.4], [-0.6, -0.8], [-0.2, -1.7]]
    prior, why = closed_set.content_free_prior("content_free", good)
    assert prior.probs is not None and why is None
    for rows in ([[0.0, INF], [0.0, INF], [-0.2, -1.7]], [[0.0, -800.0]] * 3):
        prior, why = closed_set.content_free_prior("content_free", rows)
        assert prior.probs is None and why
        # a scored row keeps its own argmax instead of being flipped by a zero prior
        assert closed_set.answer_value(BoolType(), closed_set.probabilities([-0.1, -2.4]), prior)


def test_the_unusable_prior_reaches_the_query_warnings():
    op = OperatorStats("LLMMap('Q?', review)")
    op.prior_unusable = "3 of 3 content-free prompts were decoded, not scored"
    stats = QueryStats()
    stats.add(op)
    stats.total()
    assert any("not applied" in w and "content-free" in w for w in stats.warnings)
