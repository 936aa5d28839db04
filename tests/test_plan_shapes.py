"""Plan shapes: where each placement of an LM call lands, and what each option changes.

Planning never loads a model, so these run without one.
"""

from __future__ import annotations

import pytest

from semql.planner import logical as L


def chain(node: L.PlanNode) -> list[str]:
    """Operator names from the top down along the first child."""
    out = []
    while node is not None:
        out.append(type(node).__name__)
        node = node.child
    return out


def main_scope(con, sql, **options) -> L.PlanNode:
    plan = con.plan(sql, **options)
    assert plan.has_lm
    return plan.scopes[-1].root


Q2 = (
    "SELECT reviewId FROM Reviews WHERE id = 'taken_3' AND "
    "{{LLMMap('Is the review positive?', reviewText)}} = TRUE LIMIT 5"
)


def test_filter_pushdown_and_early_exit(sample_con):
    root = main_scope(sample_con, Q2)
    assert chain(root) == ["Limit", "Project", "LMFilter", "Filter", "Scan"]
    lm = root.child.child
    assert lm.early_exit == 5
    assert str(lm.call.output) == "bool"


def test_naive_plan_runs_lm_on_every_row_then_filters(sample_con):
    root = main_scope(sample_con, Q2, optimize=False)
    assert chain(root) == ["Limit", "Project", "Filter", "LMMap", "Scan"]
    assert not any(isinstance(n, L.LMFilter) for n in root.walk())


def test_naive_select_list_calls_see_every_row(sample_con):
    sql = (
        "SELECT LLMMap('Sentiment?', reviewText, options=('POSITIVE','NEGATIVE')) AS s, "
        "count(*) FROM Reviews WHERE id = 'taken_3' GROUP BY s"
    )
    root = main_scope(sample_con, sql, optimize=False)
    assert chain(root) == ["Project", "Aggregate", "Filter", "LMMap", "Scan"]


def test_each_switch_alone(sample_con):
    no_exit = main_scope(sample_con, Q2, early_exit=False)
    assert no_exit.child.child.early_exit is None
    no_push = main_scope(sample_con, Q2, pushdown=False)
    assert chain(no_push)[2:] == ["Filter", "LMFilter", "Scan"]
    assert no_push.child.child.child.early_exit is None  # the filter above may drop rows
    no_cascade = main_scope(sample_con, Q2, cascade=False)
    assert chain(no_cascade)[2:] == ["Filter", "LMMap", "Filter", "Scan"]


@pytest.mark.parametrize(
    "tail",
    ["ORDER BY reviewId LIMIT 5", "GROUP BY reviewId LIMIT 5"],
)
def test_no_early_exit_under_order_or_aggregate(sample_con, tail):
    sql = f"SELECT reviewId FROM Reviews WHERE LLMMap('Is the review positive?', reviewText) {tail}"
    root = main_scope(sample_con, sql)
    lm = next(n for n in root.walk() if isinstance(n, L.LMFilter))
    assert lm.early_exit is None


def test_distinct_blocks_early_exit(sample_con):
    sql = "SELECT DISTINCT id FROM Reviews WHERE LLMMap('Is it positive?', reviewText) LIMIT 3"
    lm = next(n for n in main_scope(sample_con, sql).walk() if isinstance(n, L.LMFilter))
    assert lm.early_exit is None


def test_cascade_of_two_lm_filters(sample_con):
    sql = (
        "SELECT reviewId FROM Reviews WHERE LLMMap('Is it positive?', reviewText) "
        "AND id = 'taken_3' AND LLMMap('Does it mention the plot?', reviewText)"
    )
    root = main_scope(sample_con, sql)
    assert chain(root) == ["Project", "LMFilter", "LMFilter", "Filter", "Scan"]


def test_select_list_group_by_alias(sample_con):
    sql = (
        "SELECT LLMMap('Sentiment?', reviewText, options=('POSITIVE','NEGATIVE')) AS s, "
        "count(*) AS n FROM Reviews WHERE id = 'taken_3' GROUP BY s"
    )
    root = main_scope(sample_con, sql)
    assert chain(root) == ["Project", "Aggregate", "LMMap", "Filter", "Scan"]
    lm = root.child.child
    assert lm.call.output.labels() == ["POSITIVE", "NEGATIVE"]


def test_order_by_call_is_numeric_map(sample_con):
    sql = "SELECT reviewId FROM Reviews ORDER BY LLMMap('How positive, 0-10?', reviewText) DESC"
    root = main_scope(sample_con, sql)
    assert chain(root) == ["Sort", "Project", "LMMap", "Scan"]
    assert str(root.child.child.call.output) == "float"


def test_same_call_in_select_and_where_runs_once(sample_con):
    sql = (
        "SELECT reviewId, LLMMap('Stars?', reviewText) AS s FROM Reviews "
        "WHERE LLMMap('Stars?', reviewText) > 3"
    )
    plan = sample_con.plan(sql)
    assert len(plan.calls) == 1
    assert sum(isinstance(n, (L.LMMap, L.LMFilter)) for n in plan.scopes[0].root.walk()) == 1
    assert str(plan.calls[0].output) == "int"


def test_alias_used_in_where_becomes_lm_filter(sample_con):
    sql = "SELECT reviewId, LLMMap('Sentiment?', reviewText) AS s FROM Reviews WHERE s = 'POSITIVE'"
    root = main_scope(sample_con, sql)
    assert "LMFilter" in chain(root)


def test_llmqa_is_a_constant_and_llmjoin_a_join(sample_con):
    sql = (
        "SELECT title FROM Movies WHERE title IN "
        "{{LLMQA('Which are sequels?', (SELECT title FROM Movies), quantifier='{2}')}}"
    )
    plan = sample_con.plan(sql)
    assert len(plan.constants) == 1 and not plan.scopes
    out = plan.constants[0].call.output
    assert (out.min_items, out.max_items) == (2, 2)
    sql = (
        "SELECT * FROM Reviews r JOIN Movies m "
        "ON {{LLMJoin(r.id, m.title, join_criteria='same movie')}}"
    )
    root = sample_con.plan(sql).scopes[0].root
    join = next(n for n in root.walk() if isinstance(n, L.LMJoin))
    assert [type(c).__name__ for c in join.children] == ["Scan", "Scan"]


def test_cte_and_subquery_scopes_are_planned_separately(sample_con):
    sql = (
        "WITH pos AS (SELECT * FROM Reviews WHERE LLMMap('Positive?', reviewText)) "
        "SELECT count(*) FROM pos WHERE id IN "
        "(SELECT id FROM Movies WHERE LLMMap('Is it a comedy?', genre))"
    )
    plan = sample_con.plan(sql)
    names = [s.name for s in plan.scopes]
    assert names[0] == "CTE pos" and len(names) == 2


def test_explain_shows_types_and_rules(sample_con):
    text = sample_con.explain(Q2)
    assert "LMFilter" in text and "-> bool" in text
    assert "early exit" in text and "pushdown" in text
    assert "compared with TRUE" in text
