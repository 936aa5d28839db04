"""Data flows one way: running a plan never changes it (#18).

Every shape the engine handles (early exit, run-time filter order, short-circuit, a
LIMIT fixed before SELECT-list calls, LLMQA constants, LLMJoin, CTE scopes, proxies,
precision-first ranking) is planned, snapshotted, run twice and snapshotted again: the
plan's nodes, its LM calls and its SQL tree are as planned, and the second run gives
the same answers. FakeLM (planner/executor logic only) except the ranking case, which
needs a real model's label scores.
"""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest
from sqlglot import exp

from semql.planner import logical as L

QUERIES = {
    "early exit + late select": (
        "SELECT id, LLMMap('Stars?', txt) AS s FROM r "
        "WHERE movie <> 'm1' AND LLMMap('Positive?', txt) LIMIT 5"
    ),
    "filter order + moved early exit": (
        "SELECT id FROM r WHERE LLMMap('Positive?', txt) AND "
        "LLMMap('Word?', txt, options=('good','bad','great','dull','fun','meh','love','slow'))"
        " = 'fun' LIMIT 3"
    ),
    "short-circuit": "SELECT id FROM r WHERE movie = 'm0' OR LLMMap('Positive?', txt) ORDER BY id",
    "cte scope": (
        "WITH p AS (SELECT id, txt FROM r WHERE LLMMap('Positive?', txt)) "
        "SELECT count(*) AS n, min(id) AS first FROM p"
    ),
    "llmqa constant": (
        "SELECT count(*) AS n FROM r WHERE movie = "
        "{{LLMQA('Which movie is good?', (SELECT DISTINCT movie FROM r), options=('m0', 'm1'))}}"
    ),
    "llmjoin": (
        "SELECT r.id, t.name FROM r JOIN t ON {{LLMJoin(r.movie, t.name)}} "
        "WHERE r.id < 10 ORDER BY r.id"
    ),
}


def _value(v, plan: L.QueryPlan):
    """A field's value in comparable form: SQL text for expressions (and whether they
    are still nodes of the plan's own tree), ids for plan nodes."""
    if isinstance(v, exp.Expression):
        return (type(v).__name__, v.sql(dialect="duckdb"), _in_tree(v, plan))
    if isinstance(v, L.PlanNode):
        return ("node", id(v))
    if isinstance(v, (list, tuple)):
        return [_value(x, plan) for x in v]
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return (
            type(v).__name__,
            [(f.name, _value(getattr(v, f.name), plan)) for f in dataclasses.fields(v)],
        )
    if isinstance(v, dict):
        return sorted((k, _value(x, plan)) for k, x in v.items())
    return repr(v)


def _in_tree(node: exp.Expression, plan: L.QueryPlan) -> bool:
    return plan.statement is not None and any(n is node for n in plan.statement.walk())


def snapshot(plan: L.QueryPlan) -> list:
    """Everything the plan holds, expressions as SQL."""
    nodes = [n for qa in plan.constants for n in qa.walk()]
    nodes += [n for s in plan.scopes for n in s.root.walk()]
    out = [plan.statement.sql(dialect="duckdb"), plan.sql, list(plan.fired)]
    out += [_value(call, plan) for call in plan.calls]
    out += [(s.name, _value(s.select, plan), _value(s.rank_limit, plan)) for s in plan.scopes]
    out += [(type(n).__name__, _value(n, plan)) for n in nodes]
    return out


@pytest.fixture()
def con_with_join_table(make_con):
    con, _ = make_con(cache=False)
    con.register("t", pl.DataFrame({"name": ["M0", "M1", "M2", "Other"]}))
    return con


@pytest.mark.parametrize("sql", QUERIES.values(), ids=QUERIES.keys())
def test_running_a_plan_leaves_it_unchanged(con_with_join_table, sql):
    con = con_with_join_table
    plan = con.plan(sql)
    before = snapshot(plan)
    first = con._run(plan, None)
    assert snapshot(plan) == before
    second = con._run(plan, None)  # an unchanged plan runs again to the same answers
    assert second.equals(first)
    assert snapshot(plan) == before


def test_explain_analyze_shows_the_run_not_a_changed_plan(make_con):
    """The run order and the notes of what happened come from the run; the plan as
    planned still reads as written."""
    con, _ = make_con()
    sql = QUERIES["filter order + moved early exit"]
    text = con.explain(sql, analyze=True)
    assert "sampled:" in text and "actual:" in text
    planned = con.explain(sql)
    assert "sampled:" not in planned and "actual:" not in planned


@pytest.mark.model
def test_precision_first_ranking_leaves_the_plan_unchanged(model_con):
    sql = (
        "SELECT reviewId FROM Reviews WHERE id = 'taken_3' AND reviewId % 10 = 0 "
        "AND {{LLMMap('Is this movie review positive?', reviewText)}} LIMIT 2"
    )
    plan = model_con.plan(sql)
    assert plan.scopes[0].rank_limit is not None
    before = snapshot(plan)
    first = model_con._run(plan, None)
    assert any("precision-first" in n for n in model_con.explain(sql, analyze=True).split("\n"))
    assert snapshot(plan) == before
    assert model_con._run(plan, None).equals(first)


def test_llmjoin_candidates_do_not_depend_on_the_order_right_values_arrive_in():
    """DISTINCT gives the right side's values in no fixed order; the options a left value
    is offered (which, and in what order) must not follow it, or answers vary by run."""
    import itertools

    from semql.executors.operators.join_candidates import Candidates

    right = ["M0", "M1", "M2", "Other", "m10", "Mo"]  # "m3" ties with several of them
    offered = {Candidates(order, k=3).of("m3") for order in itertools.permutations(right)}
    assert len(offered) == 1
