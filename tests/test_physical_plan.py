"""The physical plan: stages compiled from the logical plan, run by an engine that
decides nothing (#37). FakeLM (planner/executor logic only).

Compiling is a pure function of the plan and the run's choices: the same choices give
the same SQL; a choice returns a new physical plan and leaves the old one (and the
logical plan) as they were; stages before a choice compile the same after it, so a run
that goes on in the new plan has run exactly its stages.
"""

from __future__ import annotations

import pytest
from test_plan_immutable import QUERIES, snapshot

from semql.planner import logical as L
from semql.planner.physical import GroupSample, LMStage, TopKStage
from semql.planner.physical.compiler import Choices, Compiled


def stage_sql(compiled: Compiled) -> list:
    """Every SQL text of a physical plan, stage by stage."""
    out = [repr(qa.contexts) for qa in compiled.qa]
    for scope in compiled.scopes:
        for stage in scope.stages:
            out.append(
                {
                    k: v
                    for k, v in vars(stage).items()
                    if isinstance(v, (str, tuple)) and k not in ("task", "title")
                }
                if not isinstance(stage, GroupSample)
                else (
                    stage.sample_sql,
                    [(u.count_sql, [c.args_sql for c in u.calls]) for u in stage.units],
                )
            )
    return [*out, compiled.final_sql]


@pytest.mark.parametrize("sql", QUERIES.values(), ids=QUERIES.keys())
def test_compiling_twice_gives_the_same_stages_and_leaves_the_plan(make_con, sql):
    con, _ = make_con()
    con.register("t", __import__("polars").DataFrame({"name": ["M0", "M1"]}))
    plan = con.plan(sql)
    before = snapshot(plan)
    first = Compiled(plan, Choices("__p"))
    assert stage_sql(Compiled(plan, Choices("__p"))) == stage_sql(first)
    assert snapshot(plan) == before


def test_every_lm_operator_has_one_stage_with_its_task(make_con):
    con, _ = make_con()
    sql = QUERIES["early exit + late select"]
    plan = con.plan(sql)
    compiled = Compiled(plan, Choices("__p"))
    ops = [n for n in plan.scopes[0].root.walk() if isinstance(n, L.LMOperator)]
    stages = [s for s in compiled.scopes[0].stages if isinstance(s, LMStage)]
    assert sorted(s.key for s in stages) == sorted(id(n) for n in ops)
    assert all(s.task is next(n.task for n in ops if id(n) == s.key) for s in stages)
    # the filter exits early; the late SELECT-list map runs after the fixed top-k rows
    kinds = [type(s).__name__ for s in compiled.scopes[0].stages]
    assert kinds == ["LMStage", "TopKStage", "LMStage"]
    assert stages[0].exit is not None and stages[0].exit.rows == 5
    top = next(s for s in compiled.scopes[0].stages if isinstance(s, TopKStage))
    table = top.create_sql.split()[3]  # CREATE TEMP TABLE <name> AS ...
    assert table.startswith("__p_top") and f"FROM {table}" in stages[1].create_inputs
    # every temp table carries the run's prefix, and the final statement reads them
    assert all(name.startswith("__p_") for name in compiled.temp_tables)
    # the fixed rows are those the filter passed; the final statement reads them and the
    # map's answers
    assert stages[0].results in top.create_sql
    assert table in compiled.final_sql and stages[1].results in compiled.final_sql


def test_a_sampled_order_is_a_new_plan_whose_earlier_stages_are_unchanged(make_con):
    con, _ = make_con()
    plan = con.plan(QUERIES["filter order + moved early exit"])
    compiled = Compiled(plan, Choices("__p"))
    stages = compiled.scopes[0].stages
    at = next(i for i, s in enumerate(stages) if isinstance(s, GroupSample))
    sample = stages[at]
    # the second predicate measured as the cheaper and more selective one: it goes first
    ordered, notes = compiled.after_sampling(sample, [(7, 8, [10.0]), (1, 8, [10.0])], None)
    assert compiled.scopes[0].stages is stages  # the old plan is as it was
    new = ordered.scopes[0].stages
    assert not any(isinstance(s, GroupSample) for s in new)
    assert stage_sql(Compiled(plan, Choices("__p")))[: at + 1] == stage_sql(compiled)[: at + 1]
    filters = [s for s in new if isinstance(s, LMStage)]
    units = [u.key for u in sample.units]
    assert [s.key for s in filters] == [units[1], units[0]]
    # the early exit moved to the filter that now runs last
    assert filters[0].exit is None and filters[-1].exit is not None
    assert set(notes) == set(units) and all("sampled:" in n for n in notes.values())


def test_llmqa_answers_are_choices_and_later_sql_reads_them(make_con):
    con, _ = make_con()
    plan = con.plan(QUERIES["llmqa constant"])
    compiled = Compiled(plan, Choices("__p"))
    assert len(compiled.qa) == 1 and compiled.pending == 1
    assert "$llmqa_0" in compiled.final_sql  # EXPLAIN shows where the answer goes
    answered = compiled.with_answer("m1")
    assert answered.pending == 0 and "'m1'" in answered.final_sql
    assert "$llmqa_0" in compiled.final_sql  # the unanswered plan stays unanswered


def test_explain_shows_the_stages_planned_and_as_they_ran(make_con):
    con, _ = make_con()
    sql = QUERIES["filter order + moved early exit"]
    planned = con.explain(sql)
    assert "physical plan" in planned and "sample the group's first rows" in planned
    ran = con.explain(sql, analyze=True).split("physical plan")[1]
    assert "sample the group's" not in ran  # the run ordered the group, then ran it
    assert ran.count("LM LMFilter") == 2 and "early exit once 3 rows pass" in ran
    assert con.plan(sql).physical.scopes[0].stages  # planner.plan() carries it
