"""Rewrites must not change answers; they only change how much LM work is done.

FakeLM (tests/fake_lm.py) stands in for the model here: these are unit tests of planner
and rewrite logic. The same equalities with the real model are in test_model_queries.py.
"""

from __future__ import annotations

import polars as pl
import pytest

import semql

from fake_lm import WORDS, FakeLM

QUERIES = [
    "SELECT id FROM r WHERE movie = 'm1' AND LLMMap('Is it positive?', txt) ORDER BY id",
    "SELECT count(*) AS n FROM r WHERE movie IN ('m1', 'm2') AND LLMMap('Positive?', txt)",
    "SELECT LLMMap('Label?', txt, options=('good','bad','other')) AS l, count(*) AS n "
    "FROM r WHERE movie = 'm3' GROUP BY l ORDER BY l",
    "SELECT id, LLMMap('Stars?', txt) AS s FROM r WHERE id < 20 ORDER BY id",
    "SELECT id FROM r WHERE LLMMap('Positive?', txt) AND id % 3 = 0 "
    "AND LLMMap('Fun?', txt, options=('fun','not fun')) = 'fun' ORDER BY id",
    "WITH p AS (SELECT * FROM r WHERE LLMMap('Positive?', txt)) "
    "SELECT movie, count(*) AS n FROM p GROUP BY movie ORDER BY movie",
    "SELECT id FROM r WHERE movie = 'm0' OR LLMMap('Positive?', txt) ORDER BY id",
    "SELECT id FROM r WHERE NOT LLMMap('Positive?', txt) AND movie = 'm4' ORDER BY id",
    # a subquery's LM call is its own scope's: the outer WHERE filters on its result
    "SELECT id FROM r WHERE LLMMap('Positive?', txt) AND id IN (SELECT id FROM r "
    "WHERE LLMMap('Fun?', txt, options=('fun','not fun')) = 'fun') ORDER BY id",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_optimised_equals_naive(make_con, sql):
    opt, lm_opt = make_con()
    naive, lm_naive = make_con(optimize=False)
    assert opt.query(sql).rows() == naive.query(sql).rows()
    assert len(lm_opt.prompts) <= len(lm_naive.prompts)


def test_dedup_one_call_per_distinct_input(make_con):
    con, lm = make_con()
    con.query("SELECT id, LLMMap('Positive?', txt) FROM r")
    assert len(lm.prompts) == len(WORDS)
    con2, lm2 = make_con(dedup=False)
    con2.query("SELECT id, LLMMap('Positive?', txt) FROM r")
    assert len(lm2.prompts) == 200


def test_pushdown_sends_only_matching_rows(make_con):
    con, lm = make_con(dedup=False)
    con.query("SELECT id FROM r WHERE movie = 'm1' AND LLMMap('Positive?', txt)")
    assert len(lm.prompts) == 40
    naive, lm2 = make_con(optimize=False)
    naive.query("SELECT id FROM r WHERE movie = 'm1' AND LLMMap('Positive?', txt)")
    assert len(lm2.prompts) == 200


def test_cascade_second_filter_sees_survivors_only(make_con):
    con, lm = make_con(dedup=False, predicate_order=False)
    con.query("SELECT id FROM r WHERE LLMMap('Positive?', txt) AND LLMMap('Fun?', txt)")
    positives = sum(1 for i in range(200) if WORDS[i % 8] in ("good", "great", "fun", "love"))
    assert len(lm.prompts) == 200 + positives


def test_early_exit_stops_within_one_batch(make_con):
    from semql.planner.rules.early_exit import BATCH_ROWS

    con, lm = make_con(dedup=False)
    got = con.query("SELECT id FROM r WHERE LLMMap('Positive?', txt) LIMIT 5")
    assert got.height == 5
    # rows pass at a rate of 1/2 here: k passing rows need about 2k inputs
    assert len(lm.prompts) <= 2 * 5 + BATCH_ROWS
    op = con.stats.operators[0]
    assert op.stopped_early
    for rid in got["id"].to_list():
        assert WORDS[rid % 8] in ("good", "great", "fun", "love")


def test_no_early_exit_under_order_by(make_con):
    con, lm = make_con(dedup=False)
    got = con.query("SELECT id FROM r WHERE LLMMap('Positive?', txt) ORDER BY id DESC LIMIT 5")
    assert len(lm.prompts) == 200
    naive, _ = make_con(optimize=False)
    assert (
        got.rows()
        == naive.query(
            "SELECT id FROM r WHERE LLMMap('Positive?', txt) ORDER BY id DESC LIMIT 5"
        ).rows()
    )


def test_result_cache_makes_rerun_free(tmp_path):
    lm = FakeLM()
    with semql.connect(str(tmp_path / "c.duckdb"), runtime=lm) as con:
        con.register("r", pl.DataFrame({"txt": ["good", "bad", "fun"]}))
        first = con.query("SELECT txt, LLMMap('Positive?', txt) AS p FROM r ORDER BY txt")
        assert con.stats.lm_calls == 3
        again = con.query("SELECT txt, LLMMap('Positive?', txt) AS p FROM r ORDER BY txt")
        assert con.stats.lm_calls == 0 and con.stats.cache_hits == 3
        assert first.rows() == again.rows()
    # the cache lives in the database file and survives a reconnect
    with semql.connect(str(tmp_path / "c.duckdb"), runtime=FakeLM()) as con:
        con.register("r", pl.DataFrame({"txt": ["good", "bad", "fun"]}))
        con.query("SELECT txt, LLMMap('Positive?', txt) AS p FROM r")
        assert con.stats.lm_calls == 0


def test_cache_file_for_memory_database(tmp_path):
    path = str(tmp_path / "cache.duckdb")
    for expected_calls in (2, 0):
        with semql.connect(runtime=FakeLM(), cache=path) as con:
            con.register("r", pl.DataFrame({"txt": ["good", "bad"]}))
            con.query("SELECT LLMMap('Positive?', txt) FROM r")
            assert con.stats.lm_calls == expected_calls


def test_params_with_lm_query(make_con):
    con, _ = make_con()
    got = con.query(
        "SELECT id FROM r WHERE movie = ? AND LLMMap('Positive?', txt) ORDER BY id", ["m2"]
    )
    assert got.height > 0
    assert all(i % 5 == 2 for i in got["id"].to_list())


def test_select_list_lm_runs_only_on_limited_rows(make_con):
    sql = "SELECT id, LLMMap('Stars?', txt) AS s, movie FROM r WHERE id > 10 ORDER BY id LIMIT 4"
    con, lm = make_con(dedup=False)
    got = con.query(sql)
    assert len(lm.prompts) == 4
    naive, lm2 = make_con(optimize=False)
    assert got.rows() == naive.query(sql).rows()
    assert got.columns == ["id", "s", "movie"]
    assert len(lm2.prompts) == 200  # naive: every row of the FROM


def test_order_by_lm_alias_keeps_all_rows(make_con):
    con, lm = make_con(dedup=False)
    con.query("SELECT id, LLMMap('Stars?', txt) AS s FROM r ORDER BY s, id LIMIT 4")
    assert len(lm.prompts) == 200
