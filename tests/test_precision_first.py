"""Precision-first LIMIT: ``LIMIT k`` over one LM condition returns the k passing rows
the model is surest of (when the candidates are few enough), the same under naive and
optimized plans."""

from __future__ import annotations

import pytest
from sampled_rows import SAMPLE_ROWS

from semql.errors import BindError
from semql.executors.lm import embedding_judge
from semql.executors.lm.lm_executor import LMExecutor
from semql.executors.lm.result_cache import ResultCache
from semql.executors.lm.stats import OperatorStats
from semql.executors.proxy.embeddings import MiniLMEmbedder
from semql.grammar.types import BoolType

QUESTION = "Is this movie review positive?"
SHOTS = (
    "examples=(('A joyless, plodding mess that wastes its talented cast.', FALSE),"
    " ('Funny, warm and beautifully made: a delight from start to finish.', TRUE))"
)
FILTER = f"{{{{LLMMap('{QUESTION}', reviewText, {SHOTS})}}}}"
TOP = f"SELECT reviewId FROM few WHERE id = 'taken_3' AND {FILTER} LIMIT 3"


def _scope(con, sql, **options):
    plan = con.plan(sql, **options)
    return plan.scopes[0]


@pytest.mark.parametrize(
    "sql, ranks",
    [
        (f"SELECT reviewId FROM Reviews WHERE {FILTER} LIMIT 3", True),
        (f"SELECT reviewId FROM Reviews WHERE id = 'taken_3' AND {FILTER} = TRUE LIMIT 3", True),
        (f"SELECT reviewId FROM Reviews WHERE {FILTER} ORDER BY reviewId LIMIT 3", False),
        (f"SELECT reviewId FROM Reviews WHERE {FILTER}", False),
        (f"SELECT DISTINCT id FROM Reviews WHERE {FILTER} LIMIT 3", False),
        (
            f"SELECT reviewId FROM Reviews WHERE {FILTER} AND "
            "{{LLMMap('Is it long?', reviewText)}} LIMIT 3",
            False,
        ),
        (
            "SELECT reviewId FROM Reviews WHERE "
            "{{LLMMap('How long is it?', reviewText, options=('short', 'long'))}} = 'long' LIMIT 3",
            True,
        ),
        (
            "SELECT reviewId FROM Reviews WHERE {{LLMMap('Name the actor', reviewText)}} = 'x' "
            "LIMIT 3",
            False,  # free text: no label probability to rank by
        ),
    ],
)
def test_applies_where_it_is_defined(sample_con, sql, ranks):
    rank = _scope(sample_con, sql).rank_limit
    assert (rank is not None) is ranks
    if ranks:
        assert rank.sample_rows == 64 and not any("LLMMap" in c.sql() for c in rank.candidates)


def test_off_switch_and_bad_values(sample_con):
    sql = f"SELECT reviewId FROM Reviews WHERE {FILTER} LIMIT 3"
    assert _scope(sample_con, sql, precision_first=0).rank_limit is None
    assert _scope(sample_con, sql, optimize=False).rank_limit is not None  # not a rewrite
    for bad in (-1, 2.5, True, "yes"):
        with pytest.raises(BindError, match="precision_first"):
            sample_con.plan(sql, precision_first=bad)
    assert _scope(sample_con, sql).rank_limit.rank_by == "lm+embedding"
    assert _scope(sample_con, sql, rank_by="lm").rank_limit.rank_by == "lm"
    with pytest.raises(BindError, match="rank_by must be one of lm\\+embedding, lm"):
        sample_con.plan(sql, rank_by="embedding")


def test_explain_and_estimate_count_the_ranked_rows(sample_con):
    sql = f"SELECT reviewId FROM Reviews WHERE id = 'taken_3' AND {FILTER} LIMIT 3"
    text = sample_con.explain(sql, precision_first=256)
    assert "precision-first: LIMIT 3 takes the 3 rows the model is surest of" in text
    every = sample_con.plan(sql, precision_first=256).scopes[0]
    sampled = sample_con.plan(sql).scopes[0]  # 120 candidates > the default 64
    small = sample_con.plan(sql, precision_first=4).scopes[0]
    calls = [
        [n.estimate.lm_calls for n in s.root.walk() if getattr(n, "call", None)]
        for s in (every, sampled, small)
    ]
    assert calls[0] == [pytest.approx(119, abs=1)]  # every distinct taken_3 review
    assert calls[1] == [64]  # the sample, where 3 of its rows are expected to pass
    assert 4 < calls[2][0] < 60  # 4 sampled, then the early exit's estimate
    # EXPLAIN says what it costs this query, from the candidates it counted
    assert "precision-first: all 120 candidate rows answered and then ranked" in text
    over = sample_con.explain(sql)
    assert "precision-first: 120 candidate rows, a fixed sample of 64 answered first" in over


EXAMPLES = [
    ("A joyless, plodding mess that wastes its talented cast.", False),
    ("Funny, warm and beautifully made: a delight from start to finish.", True),
]


def _confidences(runtime, rows: list[tuple], con) -> list:
    """The executor's confidence of each (reviewId, reviewText) row's answer, asked
    directly, divided by the default (table) prior: the mean over the first
    ``SAMPLE_ROWS`` distinct texts of ``few`` in hash order, the connection's sample."""
    sample = con.duckdb.execute(
        "SELECT DISTINCT reviewText AS t FROM few WHERE t IS NOT NULL "
        f"ORDER BY hash(t), t LIMIT {SAMPLE_ROWS}"
    ).fetchall()
    conf: list = []
    LMExecutor(runtime, ResultCache(None)).answer(
        QUESTION,
        BoolType(),
        ["reviewText"],
        [(t,) for _, t in rows],
        OperatorStats("test"),
        EXAMPLES,
        confidences=conf,
        calibration_sample=lambda: sample,
    )
    return conf


@pytest.fixture()
def few_con(model_con):
    model_con.query(
        "CREATE TABLE few AS SELECT * FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId LIMIT 24"
    )
    return model_con


@pytest.mark.model
def test_returns_the_surest_passing_rows_as_naive_execution_does(few_con, gemma_runtime):
    con = few_con
    rows = con.query("SELECT reviewId, reviewText FROM few").rows()
    passing = set(
        con.query(f"SELECT reviewId FROM few WHERE id = 'taken_3' AND {FILTER}")["reviewId"]
    )
    assert len(passing) > 3  # else the test shows nothing
    top = con.query(TOP, rank_by="lm")["reviewId"].to_list()
    naive = con.query(TOP, optimize=False, rank_by="lm")["reviewId"].to_list()
    assert len(top) == 3 and set(top) <= passing
    assert top == naive
    conf = _confidences(gemma_runtime, rows, con)
    by_id = {rid: c for (rid, _), c in zip(rows, conf, strict=True)}
    weakest_taken = min(by_id[r] for r in top)
    assert all(by_id[r] <= weakest_taken + 1e-9 for r in passing - set(top))
    # off: the first passing rows in table order, as before
    first = con.query(TOP, precision_first=0)["reviewId"].to_list()
    in_order = [rid for rid, _ in rows if rid in passing][:3]
    assert first == in_order
    # the default adds MiniLM's judgement of each row against the examples: the top 3
    # passing rows by the mean of both standardised scores over the distinct reviews
    judged = con.query(TOP)["reviewId"].to_list()
    assert judged == con.query(TOP, optimize=False)["reviewId"].to_list()
    texts = {t: (rid, c) for (rid, t), c in zip(rows, conf, strict=True)}
    answers = [rid in passing for rid, _ in texts.values()]
    margin = embedding_judge.margins(
        MiniLMEmbedder().embed, list(texts), answers, embedding_judge.anchors(BoolType(), EXAMPLES)
    )
    score = embedding_judge.combined([c for _, c in texts.values()], margin)
    by_score = sorted(
        (s, rid) for (rid, _), s, ok in zip(texts.values(), score, answers, strict=True) if ok
    )
    assert judged == [rid for _, rid in reversed(by_score[-3:])]
    assert "averaged with MiniLM" in con.explain(TOP, analyze=True)


@pytest.mark.model
def test_more_candidates_than_the_bound_rank_a_fixed_sample_as_naive_execution_does(
    few_con, gemma_runtime
):
    con = few_con
    sample = {
        r[0]
        for r in con.duckdb.execute(
            "SELECT DISTINCT reviewText FROM few WHERE id = 'taken_3' "
            "ORDER BY hash(reviewText), reviewText LIMIT 6"
        ).fetchall()
    }
    rows = con.query("SELECT reviewId, reviewText FROM few").rows()
    passing = set(
        con.query(f"SELECT reviewId FROM few WHERE id = 'taken_3' AND {FILTER}")["reviewId"]
    )
    top = con.query(TOP, precision_first=6, rank_by="lm")["reviewId"].to_list()
    assert con.stats.lm_calls < 24  # 24 candidates > 6: not all answered
    naive = con.query(TOP, precision_first=6, rank_by="lm", optimize=False)["reviewId"]
    assert top == naive.to_list()
    # the sampled passing rows by confidence, then the first passing rows after them
    conf = dict(zip([rid for rid, _ in rows], _confidences(gemma_runtime, rows, con), strict=True))
    in_sample = [rid for rid, t in rows if rid in passing and t in sample]
    after = [rid for rid, t in rows if rid in passing and t not in sample]
    assert in_sample and after  # else the test shows nothing
    assert top == (sorted(in_sample, key=lambda r: -conf[r]) + after)[:3]
    con.query(TOP, precision_first=24, rank_by="lm")
    assert con.stats.lm_calls == 24  # every candidate in the sample: all answered
