"""Each rewrite rule: it fires where it should, not where it must not, and never changes
the answer (FakeLM: unit tests of planner logic; the real model is in test_model_queries).
"""

from __future__ import annotations

import pytest

from semql.planner import logical as L
from semql.planner.physical import LMStage

from fake_lm import ROWS, WORDS

POSITIVE = ("good", "great", "fun", "love")
N = ROWS


def same_as_naive(make_con, sql: str, **options) -> tuple[int, int]:
    """Run optimised (with ``options``) and naive; assert equal rows; LM prompts of each."""
    opt, lm_opt = make_con(**options)
    naive, lm_naive = make_con(optimize=False)
    assert opt.query(sql).rows() == naive.query(sql).rows()
    return len(lm_opt.prompts), len(lm_naive.prompts)


def lm_ops(con, sql) -> list[L.LMOperator]:
    plan = con.plan(sql)
    return [n for s in plan.scopes for n in s.root.walk() if isinstance(n, L.LMOperator)]


# -- late_select -----------------------------------------------------------------------

SELECT_AFTER_FILTER = (
    "SELECT id, LLMMap('Stars?', txt) AS s FROM r WHERE LLMMap('Positive?', txt) ORDER BY id"
)


def test_select_list_calls_run_only_on_rows_passing_the_where(make_con):
    late, naive = same_as_naive(make_con, SELECT_AFTER_FILTER, dedup=False)
    positives = sum(WORDS[i % 8] in POSITIVE for i in range(N))
    assert late == N + positives  # Positive? on every row, Stars? on the positives only
    assert naive == 2 * N
    off, _ = same_as_naive(make_con, SELECT_AFTER_FILTER, dedup=False, late_select=False)
    assert off == 2 * N


def test_late_select_does_not_fire_without_select_calls(make_con):
    con, _ = make_con()
    plan = con.plan("SELECT id FROM r WHERE LLMMap('Positive?', txt)")
    assert "late_select" not in plan.fired


# -- short_circuit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # the LM answers only rows the cheap side leaves open: 160 of 200 are not m0
        ("SELECT id FROM r WHERE movie = 'm0' OR LLMMap('Positive?', txt) ORDER BY id", 160),
        # AND inside an OR: only m1 rows can make the left side true
        (
            "SELECT id FROM r WHERE (movie = 'm1' AND LLMMap('Positive?', txt)) OR id < 3 "
            "ORDER BY id",
            39,  # id 1 is an m1 row that id < 3 already accepts
        ),
        # LM OR LM: the second call only for rows the first did not accept
        (
            "SELECT id FROM r WHERE LLMMap('Positive?', txt) OR "
            "LLMMap('Fun?', txt, options=('fun', 'not fun')) = 'fun' ORDER BY id",
            N + N // 2,
        ),
    ],
)
def test_short_circuit_sends_only_undecided_rows(make_con, sql, expected):
    calls, naive = same_as_naive(make_con, sql, dedup=False)
    assert calls == expected and calls < naive
    off, _ = same_as_naive(make_con, sql, dedup=False, short_circuit=False)
    assert off > calls


def test_short_circuit_not_when_the_value_is_also_selected(make_con):
    sql = (
        "SELECT id, LLMMap('Positive?', txt) AS p FROM r "
        "WHERE movie = 'm0' OR LLMMap('Positive?', txt) ORDER BY id"
    )
    con, _ = make_con()
    assert not any(op.short_circuit for op in lm_ops(con, sql))
    calls, _ = same_as_naive(make_con, sql, dedup=False)
    assert calls == N  # every row shows its answer, so every row needs one


# -- predicate_order -------------------------------------------------------------------

RARE_LAST = (
    "SELECT id FROM r WHERE LLMMap('Positive?', txt) AND "
    "LLMMap('Word?', txt, options=('good','bad','great','dull','fun','meh','love','slow')) "
    "= 'fun' ORDER BY id"
)


def test_predicate_order_runs_the_selective_filter_first(make_con):
    ordered, naive = same_as_naive(make_con, RARE_LAST, dedup=False)
    written, _ = same_as_naive(make_con, RARE_LAST, dedup=False, predicate_order=False)
    # written order: 200 Positive? + 100 Word?; ranked: 200 Word? + 25 Positive? (+ sample)
    assert written == N + N // 2
    assert ordered < written
    con, _ = make_con()
    con.query(RARE_LAST)
    scope = con.last_plan.scopes[0]
    executed = [n for n in con.last_run.steps(scope) if isinstance(n, L.LMFilter)]
    assert "Word?" in executed[0].call.question  # runs first
    assert any("sampled:" in note for note in con.last_run.notes_of(executed[0]))
    planned = [n for n in scope.root.walk() if isinstance(n, L.LMFilter)]
    assert "Positive?" in planned[-1].call.question  # the plan stays as written


def test_predicate_order_keeps_early_exit_on_the_last_filter(make_con):
    sql = RARE_LAST.replace(" ORDER BY id", " LIMIT 3")
    con, _ = make_con()
    got = con.query(sql)
    assert got.height == 3
    assert all(WORDS[i % 8] == "fun" for i in got["id"])
    run = con.last_run
    executed = [n for n in run.steps(con.last_plan.scopes[0]) if isinstance(n, L.LMFilter)]
    stages = {s.key: s for s in run.compiled.scopes[0].stages if isinstance(s, LMStage)}
    assert stages[id(executed[-1])].exit.rows == 3 and stages[id(executed[0])].exit is None


def test_no_predicate_order_for_a_single_lm_filter(make_con):
    con, _ = make_con()
    plan = con.plan("SELECT id FROM r WHERE movie = 'm1' AND LLMMap('Positive?', txt)")
    assert "predicate_order" not in plan.fired


# -- projection_pruning ----------------------------------------------------------------


def test_projection_pruning_off_materialises_rows_but_answers_the_same(make_con):
    sql = "SELECT movie, count(*) AS n FROM r WHERE LLMMap('Positive?', txt) GROUP BY movie"
    con, _ = make_con()
    assert all(op.prune for op in lm_ops(con, sql))
    same_as_naive(make_con, sql + " ORDER BY movie", projection_pruning=False)
    wide, _ = make_con(projection_pruning=False)
    wide.query(sql)
    assert not [t for t in wide.tables() if t.startswith("__semql")]


# -- cost model and EXPLAIN ------------------------------------------------------------


def test_estimates_use_exact_counts_below_the_lm(make_con):
    con, _ = make_con()
    sql = "SELECT id FROM r WHERE movie = 'm1' AND LLMMap('Positive?', txt)"
    op = lm_ops(con, sql)[0]
    assert op.estimate.rows_in == 40
    assert op.estimate.lm_calls == len(WORDS)  # m1 rows hold all 8 distinct texts
    con.query(sql)
    assert con.stats.lm_calls == op.estimate.lm_calls  # dedup: distinct texts among m1 rows


def test_explain_shows_estimates_rules_and_actuals(make_con):
    con, _ = make_con()
    sql = "SELECT id FROM r WHERE movie = 'm1' OR LLMMap('Positive?', txt) LIMIT 4"
    text = con.explain(sql)
    assert "rules fired:" in text and "short_circuit" in text
    assert "est rows 200" in text and "LM calls" in text and "estimate:" in text
    analysed = con.explain(sql, analyze=True)
    assert "actual: rows in" in analysed and "| actual" in analysed


def test_a_scope_reading_an_lm_cte_plans_and_runs(make_con):
    sql = (
        "WITH pos AS (SELECT * FROM r WHERE movie = 'm2' AND LLMMap('Positive?', txt)) "
        "SELECT id, LLMMap('Stars?', txt) AS s FROM pos ORDER BY id"
    )
    con, _ = make_con()
    text = con.explain(sql)
    assert "CTE pos" in text and "Scan pos" in text
    same_as_naive(make_con, sql)


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("SELECT id FROM r WHERE LLMMap('Positive?', txt)", "pushdown"),  # nothing relational
        ("SELECT id, LLMMap('Stars?', txt) AS s FROM r WHERE id < 5", "cascade"),  # no LM filter
        ("SELECT id FROM r WHERE LLMMap('Positive?', txt) ORDER BY id LIMIT 3", "early_exit"),
        ("SELECT id FROM r WHERE movie = 'm1' AND LLMMap('Positive?', txt)", "short_circuit"),
    ],
)
def test_rule_does_not_fire_where_it_must_not(make_con, sql, rule):
    con, _ = make_con()
    assert rule not in con.plan(sql).fired


def test_an_answer_that_does_not_parse_is_not_cached(tmp_path):
    """A model output outside its type fails the query and is never stored for reuse."""
    import semql
    from semql.executors.runtimes.runtime import Generation

    from fake_lm import FakeLM

    class GarbledLM(FakeLM):
        def generate(self, prompt, out_type):
            return Generation(" not a number", 4, 0, 3)

    with semql.connect(str(tmp_path / "db.duckdb"), runtime=GarbledLM()) as con:
        con.duckdb.execute("CREATE TABLE t AS SELECT 'five' AS w")
        with pytest.raises(semql.ExecutionError, match="not a valid float"):
            con.query("SELECT LLMMap('How many?', w) + 1 AS n FROM t")
        stored = con.duckdb.execute("SELECT count(*) FROM semql_cache.lm_results").fetchone()
        assert stored == (0,)
        assert not [t for t in con.tables() if t.startswith("__semql")]


def test_llmqa_context_expressions_are_evaluated_not_quoted(make_con):
    """An expression given as LLMQA context reaches the prompt as its values: one per
    row of the query's FROM under its LM-free WHERE conditions, or one for a constant."""
    con, lm = make_con()
    con.query("SELECT {{LLMQA('Which?', 'Movie: ' || movie)}} AS a FROM r WHERE id < 3")
    prompt = lm.prompts[-1]
    assert "Movie: m0" in prompt and "Movie: m2" in prompt
    assert "||" not in prompt and "Movie: m3" not in prompt
    con.query("SELECT {{LLMQA('Which?', 'Day ' || (1 + 1))}} AS a")
    assert "Day 2" in lm.prompts[-1]


def test_where_conjuncts_over_the_left_side_reach_an_llmjoin(make_con):
    """The LM maps only the left values of rows the WHERE keeps; the answers are those of
    the naive plan."""
    import polars as pl

    con, lm = make_con()
    naive_con, naive_lm = make_con(optimize=False)
    for c in (con, naive_con):
        c.register(
            "a", pl.DataFrame({"id": list(range(30)), "name": [f"Film {i}" for i in range(30)]})
        )
        c.register("m", pl.DataFrame({"title": ["film 3", "film 7", "other"], "year": [1, 2, 3]}))
    sql = (
        "SELECT a.id, m.title FROM a JOIN m ON {{LLMJoin(a.name, m.title)}} "
        "WHERE a.id IN (3, 7, 11) AND m.year < 3 ORDER BY a.id"
    )
    got = con.query(sql)
    assert got.rows() == naive_con.query(sql).rows()
    assert len(lm.prompts) == 1  # "Film 11" (3 and 7 match case-insensitively); naive: 28
    assert len(naive_lm.prompts) == 28
    assert "pushdown: the LM maps only left values" in con.explain(sql)


def test_an_llmjoin_left_value_can_stay_unmatched(make_con):
    """The LM is offered one more label, "none of these": a left value it gives that
    label joins nothing."""
    import polars as pl

    con, lm = make_con()
    con.register("a", pl.DataFrame({"name": ["the other one", "none of these, really"]}))
    con.register("m", pl.DataFrame({"title": ["other", "film"]}))
    on = "ON {{LLMJoin(a.name, m.title)}}"
    inner = con.query(f"SELECT a.name, m.title FROM a JOIN m {on} ORDER BY a.name")
    assert inner.rows() == [("the other one", "other")]
    assert all("none of these" in p for p in lm.prompts)  # the label was offered
