"""LLMJoin: each left value mapped by the LM to one of its closest right values, or left
unmatched; the mapping becomes a temp table and the call a lookup into it."""

from __future__ import annotations

import pyarrow as pa
import sqlglot
from sqlglot import exp

from semql.grammar.types import OptionsType
from semql.planner import logical as L
from semql.planner.scope_sql import scope_query

from ..lm.lm_executor import LMExecutor
from .database import Database
from .join_candidates import Candidates
from .run_state import QueryRun


def run_join(
    node: L.LMJoin, scope: L.ScopePlan, run: QueryRun, db: Database, lm: LMExecutor
) -> None:
    call = node.call
    select = run.select(scope)
    join = run.working(node.join)
    op = run.op_stats(node)
    right_alias = join.this.alias_or_name
    left, right = run.fields(call)
    if {c.table for c in left.find_all(exp.Column)} == {right_alias}:
        left, right = right, left
    joins = select.args.get("joins") or []
    position = next(i for i, j in enumerate(joins) if j is join)
    left_sql = sqlglot.parse_one(
        scope_query(
            select,
            [exp.alias_(left.copy(), "v")],
            [run.working(p) for p in node.left_predicates],
            joins_upto=position,
        ),
        read="duckdb",
    )
    left_sql.set("distinct", exp.Distinct())
    _, lrows = db.fetch(left_sql.sql(dialect="duckdb"))
    right_sql = exp.Select(expressions=[exp.alias_(right.copy(), "v")]).from_(join.this.copy())
    right_sql.set("distinct", exp.Distinct())
    _, rrows = db.fetch(right_sql.sql(dialect="duckdb"))
    left_values = [r[0] for r in lrows if r[0] is not None]
    right_values = tuple(r[0] for r in rrows if r[0] is not None)
    mapping: list[tuple] = []
    unresolved = []
    lowered = {str(v).lower(): v for v in right_values}
    for value in left_values:
        if value in right_values:
            mapping.append((value, value))
        elif str(value).lower() in lowered:
            mapping.append((value, lowered[str(value).lower()]))
        else:
            unresolved.append(value)
    if unresolved and right_values:
        pick = Candidates(right_values)
        for value in unresolved:  # each value its own few candidates, or none of them
            out_type = OptionsType((*pick.of(value), pick.none))
            (answer,) = lm.answer(
                call.question,
                out_type,
                ["value"],
                [(value,)],
                op,
                call.examples,
                calibration="off",  # a content-free prior of names means nothing
            )
            if answer != pick.none:
                mapping.append((value, answer))
    op.rows_out = len(mapping)  # left values matched (the rest stay unmatched)
    table = db.new_table("join")
    data = pa.table(
        {"__l": pa.array([m[0] for m in mapping]), "__r": pa.array([m[1] for m in mapping])}
    )
    db.load(f"CREATE TEMP TABLE {table} AS SELECT * FROM {table}_src", f"{table}_src", data)
    cond = sqlglot.parse_one(
        f"({right.sql(dialect='duckdb')}) = (SELECT any_value(__m.__r) FROM {table} AS __m "
        f"WHERE __m.__l IS NOT DISTINCT FROM ({left.sql(dialect='duckdb')}))",
        read="duckdb",
    )
    for n in run.call_nodes(call):
        n.replace(cond.copy())
    op.rows_in = len(left_values)
