"""A LIMIT fixed before the SELECT list's LM calls run (the late_select rule's top-k):
the rows that survive ORDER BY/LIMIT are materialised, and the run's SQL reads them."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from semql.planner import logical as L
from semql.planner.scope_sql import scope_query

from .column_slots import ColumnSlots
from .database import Database
from .run_state import QueryRun


def fix_limited_rows(node: L.Limit, scope: L.ScopePlan, run: QueryRun, db: Database) -> None:
    """Materialise the rows that survive ORDER BY/LIMIT, then point the scope at them.

    The SELECT list's LM calls then run on those k rows only, and the final query
    reads exactly the rows they ran on (a LIMIT without a total order could pick
    other rows on a second evaluation).
    """
    select = run.select(scope)
    slots = ColumnSlots(list(select.expressions))
    aliases = {e.alias: e.this for e in select.expressions if isinstance(e, exp.Alias)}
    order = select.args.get("order")
    keys = []
    for key in order.expressions if order is not None else []:
        key = key.copy()
        for col in list(key.find_all(exp.Column)):
            if not col.table and col.name in aliases:
                col.replace(aliases[col.name].copy())
        keys.append(key)
    window = exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=keys) if keys else None)
    query = sqlglot.parse_one(
        scope_query(
            select, slots.projection() + [exp.alias_(window, "__pos")], run.below(scope, node)
        ),
        read="duckdb",
    )
    if keys:
        query.set("order", exp.Order(expressions=keys))
    query.set("limit", select.args["limit"].copy())
    if select.args.get("offset") is not None:
        query.set("offset", select.args["offset"].copy())
    table = db.new_table("top")
    db.exec(f"CREATE TEMP TABLE {table} AS {query.sql(dialect='duckdb')}")
    for item in select.expressions:
        if isinstance(item, exp.Column):
            item = item.replace(exp.alias_(item.copy(), item.output_name))
        slots.redirect(item, table)
    select.set("from_", exp.From(this=exp.to_table(table)))
    for arg in ("joins", "where", "limit", "offset"):
        select.set(arg, None)
    select.set("order", exp.Order(expressions=[exp.Ordered(this=exp.column("__pos", table))]))
