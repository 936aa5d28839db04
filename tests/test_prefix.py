"""Prefix-sharing orders (planner/prefix): PHC of GGR vs column vs table order vs the
optimum, the fast GGR vs Algorithm 1 as written, and prompt layouts in queries (FakeLM)."""

from __future__ import annotations

import numpy as np
import pytest

from semql.planner.prefix.column_order import column_order, table_order
from semql.planner.prefix.ggr import functional_dependencies, ggr
from semql.planner.prefix.layout import layout_rows
from semql.planner.prefix.phc import prefix_hit_count
from semql.planner.prefix.reference import ggr_plain, ophr
from semql.planner.prefix.table import CodedTable

ORDERS = (table_order, column_order, ggr, ggr_plain)


def phc(table, order_fn) -> float:
    return prefix_hit_count(table, order_fn(table))


def unit_table(rows) -> CodedTable:
    return CodedTable.from_values(rows, [[1] * len(r) for r in rows])


def random_table(rng, n, m, values=3) -> CodedTable:
    codes = rng.integers(0, values, size=(n, m))
    return CodedTable.from_codes(codes, [rng.integers(1, 6, size=values) for _ in range(m)])


def test_figure_1a_unique_first_field():
    """Seed 003 Fig. 1a: a unique first field hides (n-1)(m-1) hits from the fixed order."""
    n, m = 7, 4
    table = unit_table([(f"id{i}",) + ("same",) * (m - 1) for i in range(n)])
    assert phc(table, table_order) == 0
    assert phc(table, column_order) == phc(table, ggr) == (n - 1) * (m - 1) == ophr(table)


def test_figure_1b_groups_in_different_fields():
    """Seed 003 Fig. 1b: one group per field; any fixed order gets x-1, GGR 3(x-1)."""
    x, rows = 4, []
    for g in range(3):
        for i in range(x):
            row = [f"u{g}{i}{j}" for j in range(3)]
            row[g] = f"G{g}"
            rows.append(tuple(row))
    table = unit_table(rows)
    assert phc(table, table_order) == phc(table, column_order) == x - 1
    assert phc(table, ggr) == 3 * (x - 1) == ophr(table)


def test_random_tables_ggr_beats_column_beats_table_and_stays_below_optimum():
    rng = np.random.default_rng(7)
    totals = dict.fromkeys(["table", "column", "ggr", "ophr"], 0.0)
    for _ in range(150):
        table = random_table(rng, int(rng.integers(2, 7)), int(rng.integers(1, 4)))
        got = {"table": phc(table, table_order), "column": phc(table, column_order)}
        got["ggr"], got["ophr"] = phc(table, ggr), ophr(table)
        assert got["ggr"] <= got["ophr"] and got["column"] <= got["ophr"]
        for k, v in got.items():
            totals[k] += v
    assert totals["ophr"] >= totals["ggr"] > totals["column"] > totals["table"]
    assert totals["ggr"] >= 0.95 * totals["ophr"]


def test_ggr_is_optimal_when_one_field_determines_the_rest():
    """Seed 003 Sec. 2.2.3: with accurate FDs covering every field (A <-> B, A <-> C)."""
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = int(rng.integers(2, 8))
        a = rng.integers(0, 3, size=n)
        codes = np.stack([a, (a + 1) % 3, (a * 2) % 3], axis=1)
        table = CodedTable.from_codes(codes, [rng.integers(1, 6, size=3) for _ in range(3)])
        assert phc(table, ggr) == ophr(table)


def test_single_field_or_single_row_is_optimal():
    rng = np.random.default_rng(5)
    for _ in range(30):
        one_field = random_table(rng, int(rng.integers(1, 8)), 1)
        assert phc(one_field, ggr) == ophr(one_field)
    assert phc(random_table(rng, 1, 4), ggr) == 0


def test_functional_dependencies_found():
    a = np.array([0, 0, 1, 1, 2, 2])
    table = CodedTable.from_codes(
        np.stack([a, a % 2, np.arange(6) % 2], axis=1), [np.ones(3), np.ones(2), np.ones(2)]
    )
    fds = functional_dependencies(table)
    assert fds[0] == (1,) and fds[2] == ()


@pytest.mark.parametrize("order_fn", ORDERS)
def test_orders_are_permutations(order_fn):
    rng = np.random.default_rng(11)
    table = random_table(rng, 300, 5, values=12)
    order = order_fn(table)
    assert sorted(order.rows.tolist()) == list(range(300))
    assert all(sorted(f) == list(range(5)) for f in order.fields.tolist())


def test_fast_ggr_reaches_algorithm_1():
    """The vectorised GGR matches Algorithm 1 as written on larger random tables."""
    rng = np.random.default_rng(13)
    fast = plain = 0.0
    for _ in range(20):
        codes = np.stack([rng.integers(0, v, size=2000) for v in (4, 30, 200, 2000)], axis=1)
        table = CodedTable.from_codes(
            codes, [rng.integers(3, 60, size=v) for v in (4, 30, 200, 2000)]
        )
        fast += phc(table, ggr)
        plain += phc(table, ggr_plain)
    assert fast >= 0.99 * plain


def test_layout_of_rows():
    rows = [(f"review {i}", "Taken 3" if i % 2 else "Get Out") for i in range(10)]
    layout = layout_rows("ggr", ["reviewText", "title"], rows)
    assert all(layout.order_of(r) == (1, 0) for r in rows)  # the shared title first
    order = layout.run_order(rows)
    titles = [rows[i][1] for i in order]
    assert titles == sorted(titles, key=titles.index)  # grouped: one run per title
    assert layout.hit_rate > 0
    assert layout_rows("table", ["a", "b"], rows).order_of(rows[0]) == (0, 1)


# -- in queries (FakeLM: planner/rewrite logic only) ------------------------------------

TWO_FIELDS = "SELECT id, {{LLMMap('Is it good?', txt, movie)}} AS ok FROM r ORDER BY id"


def test_layout_is_the_same_in_naive_and_optimised_plans(make_con):
    con, _ = make_con(prefix_order="ggr")
    layouts = []
    for opts in ({}, {"optimize": False}):
        plan = con.plan(TWO_FIELDS, **opts)
        node = next(n for n in plan.scopes[0].root.walk() if getattr(n, "layout", None))
        layouts.append(node.layout.orders)
    assert layouts[0] == layouts[1] and layouts[0]


def test_by_default_a_rows_prompt_depends_on_that_row_alone(make_con):
    """The default layout keeps the fields as written: adding unrelated rows (here ones
    that make "m1" a value GGR would put first) changes no row's prompt."""
    import polars as pl

    con, lm = make_con()
    sql = "SELECT {{LLMMap('Is it good?', txt, movie)}} AS ok FROM t"
    base = {"txt": ["a good movie", "a bad movie"], "movie": ["m1", "m2"]}
    con.register("t", pl.DataFrame(base))
    con.query(sql)
    before = sorted(lm.prompts)
    lm.prompts.clear()
    more = {
        "txt": base["txt"] + [f"t{i}" for i in range(50)],
        "movie": base["movie"] + ["m1"] * 50,
    }
    con.register("t", pl.DataFrame(more))
    con.query(sql)
    assert set(before) <= set(lm.prompts)
    rows = [("b", "x"), ("a", "y"), ("b", "w"), ("a", "x")]
    table = layout_rows("table", ["txt", "movie"], [])
    assert [rows[i] for i in table.run_order(rows)] == sorted(rows)  # equal leading fields together


@pytest.mark.parametrize("prefix_order", ["ggr", "column", "table"])
def test_reordering_changes_neither_answers_nor_result_order(make_con, prefix_order):
    con, lm = make_con(prefix_order=prefix_order)
    naive_con, naive_lm = make_con(prefix_order=prefix_order, optimize=False)
    got = con.query(TWO_FIELDS)
    assert got.rows() == naive_con.query(TWO_FIELDS).rows()
    assert got["id"].to_list() == list(range(200))
    if prefix_order == "ggr":  # 40 distinct tuples: 8 texts (long) x 5 movies (short)
        assert "prefix_reorder" in con.last_plan.fired
        firsts = [p.rsplit("\n\n", 1)[-1].split("\n")[0] for p in lm.prompts]
        assert len(firsts) == 40 and all(f.startswith("txt: ") for f in firsts)
        assert sum(a != b for a, b in zip(firsts[:-1], firsts[1:], strict=True)) == 7
        assert con.stats.prefix_hit_count > naive_con.stats.prefix_hit_count


def test_bad_prefix_order_is_a_clear_error(make_con):
    con, _ = make_con()
    with pytest.raises(semql_errors().BindError, match="prefix_order must be one of"):
        con.query(TWO_FIELDS, prefix_order="random")


def semql_errors():
    import semql.errors

    return semql.errors
