"""Batch calibration: the prior is the mean label distribution of a fixed sample of the
operator's rows, drawn where every plan agrees (the WHERE's relational conjuncts)."""

from __future__ import annotations

import numpy as np
import pytest
from sampled_rows import label_probs, prior_of, sampled_texts, two_movies

import semql

QUESTION = "Is this review positive?"
CALL = "{{LLMMap('" + QUESTION + "', reviewText)}}"


@pytest.fixture()
def small(gemma_runtime):
    yield from two_movies(gemma_runtime, "batch")


@pytest.mark.model
def test_the_prior_is_the_mean_of_the_sampled_rows(small, gemma_runtime):
    """The prior reported equals the mean label distribution of the rows the sample
    rule names (distinct texts of the WHERE's rows, hash order, the first 6), scored
    here directly on the runtime."""
    con = small
    sql = "SELECT count(*) AS n FROM Small WHERE id = 'taken_3' AND " + CALL
    con.query(sql, calibration_rows=6)
    texts = sampled_texts(con, "id = 'taken_3'", 6)
    probs = label_probs(gemma_runtime, QUESTION, texts)
    yes, no = np.mean(probs, axis=0)
    assert (
        prior_of(con) == f"calibration batch: prior yes {yes:.2f}, no {no:.2f} over 6 sampled rows"
    )


@pytest.mark.model
def test_naive_and_optimized_share_the_prior_and_the_answers(small):
    """Pushdown sends the LM one movie's rows, naive execution both movies': the sample
    comes from the WHERE's relational rows in both, so prior and answers are the same;
    and it does depend on that WHERE (another movie, another prior)."""
    con = small
    sql = "SELECT reviewId FROM Small WHERE id = 'MOVIE' AND " + CALL + " ORDER BY reviewId"
    found, priors = {}, {}
    for optimize in (True, False):
        found[optimize] = con.query(sql.replace("MOVIE", "taken_3"), optimize=optimize)[
            "reviewId"
        ].to_list()
        priors[optimize] = prior_of(con)
    assert found[True] == found[False]
    assert priors[True] == priors[False]
    assert con.stats.lm_calls + con.stats.cache_hits >= con.stats.operators[0].rows_in
    con.query(sql.replace("MOVIE", "ant_man_and_the_wasp_quantumania"))
    assert prior_of(con) != priors[True]


@pytest.mark.model
def test_an_early_exit_still_samples_the_whole_population(small):
    """LIMIT stops the LM early; the prior is the same as the full query's, paid for with
    calibration calls for the sampled rows the LIMIT never reached."""
    con = small
    where = "WHERE id = 'taken_3' AND " + CALL
    con.query(f"SELECT count(*) FROM Small {where}")
    full = prior_of(con)
    con.query(f"SELECT reviewId FROM Small {where} LIMIT 1", precision_first=0)
    assert prior_of(con) == full
    (op,) = con.stats.operators
    assert op.stopped_early and con.stats.lm_calls == op.rows_in
    assert con.stats.calibration_calls > 0


def test_calibration_rows_must_be_a_positive_count(sample_con):
    with pytest.raises(semql.BindError, match="calibration_rows must be a positive"):
        sample_con.explain("SELECT 1", calibration_rows=0)
    sql = "SELECT {{LLMMap('Is it good?', reviewText, calibration='batch')}} AS g FROM Reviews"
    assert "calibration batch" in sample_con.explain(sql)


@pytest.mark.model
def test_a_fixed_limit_samples_the_rows_before_it(small):
    """late_select runs the SELECT list's call on the LIMITed rows only; the sample is
    still the scope's rows, as in naive execution, so both answer alike."""
    con = small
    sql = (
        "SELECT reviewId, "
        + CALL
        + " AS p FROM Small WHERE id = 'taken_3' ORDER BY reviewId LIMIT 4"
    )
    found, priors = {}, {}
    for optimize in (True, False):
        found[optimize] = con.query(sql, optimize=optimize).rows()
        priors[optimize] = prior_of(con)
    assert "late_select" in con.explain(sql)
    assert found[True] == found[False] and priors[True] == priors[False]
    rows = len(sampled_texts(con, "id = 'taken_3'", 32))
    assert priors[True].endswith(f"over {rows} sampled rows")
