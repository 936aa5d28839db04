"""LLMJoin in the physical plan: the SQL of its left and right values, and the condition
that replaces the call once the LM's mapping is in the stage's table."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from ..scope_sql import scope_query


def join_sql(
    select: exp.Select,
    join: exp.Join,
    left: exp.Expression,
    right: exp.Expression,
    left_predicates: list[exp.Expression],
    table: str,
) -> tuple[str, str, exp.Expression]:
    """(distinct left values that can reach the output, distinct right values, the
    condition reading the mapping in ``table``). ``left`` and ``right`` are the call's
    arguments, ``right`` the one over the joined table."""
    joins = select.args.get("joins") or []
    position = next(i for i, j in enumerate(joins) if j is join)
    left_sql = sqlglot.parse_one(
        scope_query(select, [exp.alias_(left.copy(), "v")], left_predicates, joins_upto=position),
        read="duckdb",
    )
    left_sql.set("distinct", exp.Distinct())
    right_sql = exp.Select(expressions=[exp.alias_(right.copy(), "v")]).from_(join.this.copy())
    right_sql.set("distinct", exp.Distinct())
    cond = sqlglot.parse_one(
        f"({right.sql(dialect='duckdb')}) = (SELECT any_value(__m.__r) FROM {table} AS __m "
        f"WHERE __m.__l IS NOT DISTINCT FROM ({left.sql(dialect='duckdb')}))",
        read="duckdb",
    )
    return left_sql.sql(dialect="duckdb"), right_sql.sql(dialect="duckdb"), cond
