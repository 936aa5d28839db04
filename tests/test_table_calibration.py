"""Table calibration: the prior is the mean label distribution of a fixed sample of the
table the operator's rows were filtered from, so rows a filter picked out are judged
against the whole table rather than read as balanced among themselves."""

from __future__ import annotations

import numpy as np
import pytest
import sqlglot
from sampled_rows import label_probs, prior_of, sampled_texts, two_movies

from semql.planner.physical.samples import calibration_sql
from semql.planner.scope_sql import relational_conjuncts

QUESTION = "Is this review positive?"
CALL = "{{LLMMap('" + QUESTION + "', reviewText)}}"


def _sample_where(sql: str, method: str) -> str:
    select = sqlglot.parse_one(sql, dialect="duckdb")
    fields = [select.expressions[0].copy()]
    return calibration_sql(select, fields, relational_conjuncts(select), 8, method)


def test_the_table_sample_keeps_joins_and_drops_filters():
    """A conjunct relating two tables' columns stays (else the sample would come from a
    cross product); one picking rows by a constant, a list or a subquery goes."""
    sql = (
        "SELECT r.reviewText FROM Reviews r, Movies m WHERE r.id = m.id AND r.id = 'taken_3' "
        "AND m.audienceScore > 50 AND r.reviewId IN (SELECT reviewId FROM Picked)"
    )
    table = _sample_where(sql, "table")
    assert "r.id = m.id" in table
    assert "taken_3" not in table and "audienceScore" not in table and "Picked" not in table
    batch = _sample_where(sql, "batch")
    assert "taken_3" in batch and "audienceScore" in batch and "Picked" in batch


@pytest.fixture()
def small(gemma_runtime):
    yield from two_movies(gemma_runtime, "table")


@pytest.mark.model
def test_the_prior_is_the_tables_whatever_the_filter(small, gemma_runtime):
    """Under ``WHERE id = <one movie>`` the prior is the mean label distribution of the
    whole table's sampled texts (scored here directly on the runtime), the same for both
    movies; batch's differs between them. Sampled rows the filter drops are calibration
    calls; those it keeps are asked once, and count as the operator's LM calls."""
    con = small
    sql = "SELECT count(*) AS n FROM Small WHERE id = 'MOVIE' AND " + CALL
    con.query(sql.replace("MOVIE", "taken_3"), calibration_rows=6)
    texts = sampled_texts(con, "TRUE", 6)
    yes, no = np.mean(label_probs(gemma_runtime, QUESTION, texts), axis=0)
    expected = (
        f"calibration table: prior yes {yes:.2f}, no {no:.2f} over 6 sampled rows of the table"
    )
    assert prior_of(con) == expected
    kept = set(sampled_texts(con, "id = 'taken_3'", 1000))
    assert 0 < len(kept & set(texts)) < 6
    assert con.stats.lm_calls == len(kept) == con.stats.operators[0].rows_in
    assert con.stats.calibration_calls == len(set(texts) - kept)
    con.query(sql.replace("MOVIE", "ant_man_and_the_wasp_quantumania"), calibration_rows=6)
    assert prior_of(con) == expected
    batch = []
    for movie in ("taken_3", "ant_man_and_the_wasp_quantumania"):
        con.query(sql.replace("MOVIE", movie), calibration_rows=6, calibration="batch")
        batch.append(prior_of(con))
    assert batch[0] != batch[1]


@pytest.mark.model
def test_naive_and_optimized_answer_alike(small):
    """Pushdown sends the LM one movie's rows, naive execution every row: both divide by
    the table's prior and give the same answers."""
    con = small
    sql = "SELECT reviewId FROM Small WHERE id = 'taken_3' AND " + CALL + " ORDER BY reviewId"
    found, priors = {}, {}
    for optimize in (True, False):
        found[optimize] = con.query(sql, optimize=optimize)["reviewId"].to_list()
        priors[optimize] = prior_of(con)
    assert found[True] == found[False]
    assert priors[True] == priors[False]
