"""Every rewrite rule gives the naive answer with the real bundled model on SemBench data.

24 real movie reviews (12 of each of two movies); each query runs optimised (all rules on)
and naive (every rule off: every LM call on every row, in table order), cache off.
"""

from __future__ import annotations

import pytest
from sampled_rows import SAMPLE_ROWS

import semql

pytestmark = pytest.mark.model

POS = "LLMMap('Is the review positive?', reviewText)"
ACTING = "LLMMap('Does the review talk about the acting?', reviewText)"
SENTIMENT = "LLMMap('Sentiment?', reviewText, options=('positive', 'negative'))"

QUERIES = {
    "pushdown+cascade": f"SELECT reviewId FROM R WHERE id = 'taken_3' AND {POS} ORDER BY 1",
    "short_circuit": f"SELECT reviewId FROM R WHERE id = 'taken_3' OR {POS} ORDER BY 1",
    "predicate_order": f"SELECT reviewId FROM R WHERE {POS} AND NOT {ACTING} ORDER BY 1",
    "late_select": f"SELECT reviewId, {SENTIMENT} AS s FROM R WHERE {POS} ORDER BY 1",
    "top_k": f"SELECT reviewId, {SENTIMENT} AS s FROM R ORDER BY reviewId LIMIT 3",
    # an LM call in a subquery of the WHERE belongs to the subquery's scope
    "nested scope": f"SELECT reviewId FROM R WHERE {POS} AND reviewId IN "
    f"(SELECT reviewId FROM R WHERE NOT {ACTING}) ORDER BY 1",
    # one call as a decision and as a number: two operators, each read its own way
    "decision and probability": f"SELECT reviewId, {POS} AS yes, {POS} + 0 AS p FROM R "
    f"WHERE id = 'taken_3' ORDER BY 1",
    # two fields: the GGR layout groups the rows by title; naive asks in table order
    "prefix_reorder": "SELECT R.reviewId, {{LLMMap('Does the review praise the movie?', "
    "R.reviewText, M.title, return_type='bool')}} AS p FROM R "
    "JOIN (SELECT DISTINCT id, title FROM Movies) M ON R.id = M.id ORDER BY 1",
}


@pytest.fixture(scope="module")
def cons(gemma_runtime):
    made = {}
    for name, opts in (("opt", {}), ("naive", {"optimize": False})):
        con = semql.connect(
            runtime=gemma_runtime, cache=False, calibration_rows=SAMPLE_ROWS, **opts
        )
        semql.load_sample(con)
        con.duckdb.execute(
            "CREATE TEMP TABLE R AS SELECT * FROM ("
            "SELECT *, row_number() OVER (PARTITION BY id ORDER BY length(reviewText), reviewId)"
            " AS k FROM Reviews WHERE id IN ('taken_3', 'get_out')) WHERE k <= 12"
        )
        made[name] = con
    yield made
    for con in made.values():
        con._runtime = None  # shared by the session
        con.close()


@pytest.mark.parametrize("rule", list(QUERIES))
def test_rule_gives_the_naive_answer(cons, rule):
    sql = QUERIES[rule]
    optimised = cons["opt"].query(sql).rows()
    fired = cons["opt"].last_plan.fired
    expected = {
        "top_k": ["late_select"],
        "pushdown+cascade": ["pushdown", "cascade"],
        "nested scope": ["cascade"],
        "decision and probability": ["dedup"],
    }
    assert set(expected.get(rule, [rule])) <= set(fired)
    opt_calls = cons["opt"].stats.lm_calls
    naive = cons["naive"].query(sql).rows()
    assert optimised == naive
    assert opt_calls <= cons["naive"].stats.lm_calls


def test_early_exit_rows_are_rows_naive_accepts(cons):
    sql = f"SELECT reviewId FROM R WHERE {POS} LIMIT 3"
    got = {r[0] for r in cons["opt"].query(sql, precision_first=0).rows()}
    assert cons["opt"].stats.lm_calls < 24  # stopped early
    assert "early_exit" in cons["opt"].last_plan.fired
    accepted = {r[0] for r in cons["naive"].query(sql.replace(" LIMIT 3", "")).rows()}
    assert len(got) == min(3, len(accepted)) and got <= accepted


@pytest.mark.parametrize(
    "fields, layout",
    [("title, reviewText", "table"), ("reviewText, title", "ggr")],
)
def test_prefix_reorder_serves_more_prompt_tokens_from_the_kv_cache(cons, fields, layout):
    """Rows of two movies interleaved: asked grouped by title (the default layout sorts
    rows by the fields as written; GGR puts the title first itself), more of each prompt
    is reused; the answers are the same either way."""
    con = cons["opt"]
    con.duckdb.execute(
        "CREATE OR REPLACE TEMP TABLE RT AS SELECT R.reviewId, R.reviewText, M.title FROM R "
        "JOIN (SELECT DISTINCT id, title FROM Movies) M ON R.id = M.id ORDER BY md5(reviewText)"
    )
    titles = [r[0] for r in con.duckdb.execute("SELECT title FROM RT").fetchall()]
    assert sum(a != b for a, b in zip(titles[:-1], titles[1:], strict=True)) > 4  # interleaved
    sql = (
        f"SELECT reviewId, {{{{LLMMap('Does the review praise the movie?', {fields}, "
        "return_type='bool')}} AS p FROM RT ORDER BY 1"
    )
    # as stored first: the KV cache then holds its last prompt, which the grouped run's
    # first prompt cannot repeat in full (the other way round it could)
    # content_free: a table prior's sample of a table this small would ask every row
    # first, in its own order, before either run order is seen
    as_stored = con.query(
        sql, prefix_reorder=False, prefix_order=layout, calibration="content_free"
    ).rows()
    stored_stats = con.stats
    grouped = con.query(sql, prefix_order=layout, calibration="content_free").rows()
    assert "prefix_reorder" in con.last_plan.fired
    assert grouped == as_stored
    assert stored_stats.lm_calls == con.stats.lm_calls
    assert con.stats.cached_prompt_tokens > stored_stats.cached_prompt_tokens
    assert con.stats.prefix_hit_count > stored_stats.prefix_hit_count
