"""Precision-first LIMIT: ``LIMIT k`` over one LM condition returns the k passing rows
the model is surest of (when the candidates are few enough), the same under naive and
optimized plans."""

from __future__ import annotations

import pytest

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
        assert rank.max_rows == 64 and not any("LLMMap" in c.sql() for c in rank.candidates)


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


def test_explain_and_estimate_count_every_candidate(sample_con):
    sql = f"SELECT reviewId FROM Reviews WHERE id = 'taken_3' AND {FILTER} LIMIT 3"
    text = sample_con.explain(sql, precision_first=256)
    assert "precision-first: LIMIT 3 takes the 3 rows the model is surest of" in text
    ranked = sample_con.plan(sql, precision_first=256).scopes[0]
    first_k = sample_con.plan(sql).scopes[0]  # 120 candidates > the default 64
    calls = [n.estimate.lm_calls for n in ranked.root.walk() if hasattr(n, "call") and n.call]
    calls_k = [n.estimate.lm_calls for n in first_k.root.walk() if hasattr(n, "call") and n.call]
    assert calls == [pytest.approx(119, abs=1)]  # every distinct taken_3 review
    assert calls_k[0] < 60  # the early exit's estimate
    # EXPLAIN says whether it applies to this query, from the candidates it counted
    assert "precision-first applies: 120 candidate rows (at most 256), all answered" in text
    over = sample_con.explain(sql)
    assert "precision-first does not apply: 120 candidate rows (over 64)" in over
    assert "applies:" not in over


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
    # the executor's confidence of each row's answer, asked directly
    lm = LMExecutor(gemma_runtime, ResultCache(None))
    examples = [
        ("A joyless, plodding mess that wastes its talented cast.", False),
        ("Funny, warm and beautifully made: a delight from start to finish.", True),
    ]
    conf: list = []
    lm.answer(
        QUESTION,
        BoolType(),
        ["reviewText"],
        [(t,) for _, t in rows],
        OperatorStats("test"),
        examples,
        confidences=conf,
    )
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
        MiniLMEmbedder().embed, list(texts), answers, embedding_judge.anchors(BoolType(), examples)
    )
    score = embedding_judge.combined([c for _, c in texts.values()], margin)
    by_score = sorted(
        (s, rid) for (rid, _), s, ok in zip(texts.values(), score, answers, strict=True) if ok
    )
    assert judged == [rid for _, rid in reversed(by_score[-3:])]
    assert "averaged with MiniLM" in con.explain(TOP, analyze=True)


@pytest.mark.model
def test_more_candidates_than_the_bound_keep_the_early_exit(few_con):
    few_con.query(TOP, precision_first=10)  # 24 candidates > 10
    assert few_con.stats.lm_calls < 24
    few_con.query(TOP)
    assert few_con.stats.lm_calls == 24  # ranked: every candidate answered
